//! What a process can learn from `/proc` and pidfds, about itself and about host processes. No
//! Docker here: the shim and the sibling init both use it, and the relay's state machine reaches
//! it through [`crate::relay::effects::HostProcesses`] so that its unit tests need no real processes.
//!
//! By what each knows, lowest first: `file` (reading a `/proc` file), `mounts` (the mount table), `identity` (a process named
//! for good by its pid and start time, and whether a pid is alive), `pidfd` (holding a process
//! until it exits), `host` (namespaces, the container this process is in, its own binary, its
//! clock and memory).

mod file;
mod host;
mod identity;
mod mounts;
mod pidfd;

pub(crate) use file::{read, read_self};
pub use host::*;
pub(crate) use identity::*;
pub(crate) use mounts::*;
pub(crate) use pidfd::*;

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use nix::sys::signal::Signal;

    use super::host::INITIAL_PID_NAMESPACE;
    use super::*;

    const ID: &str = "a6941e8119eb320b59faf759022b09c29a1ed00773c8ffd89aac98b8cd01b236";

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = "4242 (my (odd) cmd) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(
            ProcStat::parse(stat),
            Some(ProcStat {
                state: 'S',
                ppid: 17,
                start: 987654
            })
        );
        assert_eq!(ProcStat::parse("garbage"), None);
    }

    #[test]
    fn an_identity_survives_only_as_long_as_the_process() {
        let me = ProcessIdentity::current().unwrap();
        assert_eq!(me.to_string().parse::<ProcessIdentity>(), Ok(me));
        assert_eq!(me.liveness(true), Some(true));
        let reused = ProcessIdentity {
            start: me.start + 1,
            ..me
        };
        assert_eq!(reused.liveness(true), Some(false), "same pid, other start");
        let gone = ProcessIdentity {
            pid: 4194305,
            start: 1,
        };
        assert_eq!(gone.liveness(true), Some(false));
        assert_eq!(gone.liveness(false), None, "invisible is not dead");
        assert_eq!(
            reused.liveness(false),
            None,
            "a pid of another namespace is not the host's"
        );
        assert_eq!(me.liveness(false), None);
        assert!("garbage".parse::<ProcessIdentity>().is_err());
        assert!(
            "0:5".parse::<ProcessIdentity>().is_err(),
            "pid 0 is no process"
        );
    }

    #[test]
    fn the_initial_pid_namespace_is_told_by_its_fixed_inode() {
        // The suite runs on the host, as root: the kernel's first PID namespace.
        let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
        assert_eq!(
            in_initial_pid_namespace(),
            ns.as_os_str() == INITIAL_PID_NAMESPACE
        );
    }

    #[test]
    fn a_pid_is_judged_gone_only_where_host_pids_are_visible() {
        assert!(process_gone(4194305, true));
        assert!(!process_gone(4194305, false));
        assert!(!process_gone(std::process::id(), true));
        assert!(!process_gone(u32::MAX, true), "not a pid at all");
    }

    #[test]
    fn tells_a_mount_point_from_what_is_under_one() {
        let root = Path::new("/");
        assert_eq!(
            mount_point_among(root, &["no-such-path", "proc"]),
            Some(true)
        );
        // The link itself, on /proc's mount, not the directory it names.
        let proc = Path::new("/proc");
        assert_eq!(mount_point_among(proc, &["1", "self"]), Some(false));
        assert_eq!(mount_point_among(proc, &["no-such-path"]), Some(false));
        assert_eq!(mount_point_among(Path::new("/no/such/path"), &["x"]), None);
    }

    #[test]
    fn finds_the_container_in_mountinfo() {
        let mountinfo = format!(
            "69 50 0:60 / / rw,relatime - overlay overlay rw\n\
             86 69 254:0 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda rw\n"
        );
        assert_eq!(container_id_in_mountinfo(&mountinfo).as_deref(), Some(ID));
        assert_eq!(
            container_id_in_mountinfo("22 1 0:21 / /proc rw - proc proc rw\n"),
            None
        );
        // A container's ID-shaped directory mounted elsewhere is not evidence.
        let elsewhere = format!(
            "86 69 254:0 /var/lib/docker/containers/{ID}/hostname /data/hostname rw - ext4 x rw\n"
        );
        assert_eq!(container_id_in_mountinfo(&elsewhere), None);
    }

    #[test]
    fn finds_the_container_in_cgroup_paths() {
        assert_eq!(
            container_id_in_cgroup(&format!("9:pids:/docker/{ID}\n")).as_deref(),
            Some(ID)
        );
        assert_eq!(
            container_id_in_cgroup(&format!("0::/system.slice/docker-{ID}.scope\n")).as_deref(),
            Some(ID)
        );
        assert_eq!(container_id_in_cgroup("0::/\n"), None);
        assert_eq!(
            container_id_in_cgroup("0::/user.slice/user-0.slice/session-1.scope\n"),
            None
        );
    }

    #[test]
    fn a_mount_point_is_matched_exactly_and_escapes_are_read() {
        let mountinfo = "87 67 0:46 / /run/mesos-executor-shim/sibling ro - tmpfs tmpfs rw\n\
                         88 67 254:0 /srv/a\\040b /opt/a\\040b ro - ext4 /dev/vda rw\n";
        assert!(is_mount_point(
            mountinfo,
            Path::new("/run/mesos-executor-shim/sibling")
        ));
        assert!(!is_mount_point(
            mountinfo,
            Path::new("/run/mesos-executor-shim")
        ));
        assert!(is_mount_point(mountinfo, Path::new("/opt/a b")));
    }

    #[test]
    fn a_pid_outside_this_namespace_or_container_is_not_confirmed() {
        assert!(matches!(
            check_pid_belongs_to(std::process::id(), ID),
            PidCheck::Foreign(_)
        ));
        assert_eq!(
            check_pid_belongs_to(i32::MAX as u32, ID),
            PidCheck::NotVisible
        );
    }

    #[test]
    fn a_pidfd_holds_its_process_and_sees_it_exit() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let identity = ProcessIdentity::of(child.id()).unwrap();
        let pidfd = Pidfd::open_identity(&identity).unwrap().expect("alive");
        assert!(!pidfd.has_exited());
        let stale = ProcessIdentity {
            start: identity.start + 1,
            ..identity
        };
        assert!(
            Pidfd::open_identity(&stale).unwrap().is_none(),
            "a reused pid is not the process"
        );
        pidfd.send_signal(Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        assert!(pidfd.has_exited());
        assert!(Pidfd::open_identity(&identity).unwrap().is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_exit_watch_resolves_when_its_process_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let identity = ProcessIdentity::of(child.id()).unwrap();
        let mut watch = ExitWatch::open(&identity).unwrap().expect("alive");
        watch.signal(Signal::SIGTERM).unwrap();
        // The child is ours: reap it so that it exits for good rather than lingering a zombie.
        let reaper = std::thread::spawn(move || child.wait());
        tokio::time::timeout(Duration::from_secs(10), watch.exited())
            .await
            .expect("the watch saw the exit");
        reaper.join().unwrap().unwrap();
    }

    /// Where no pidfd can be had, the same watch by a look at /proc now and then.
    #[tokio::test(flavor = "current_thread")]
    async fn a_watch_without_pidfds_sees_the_exit_too() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let identity = ProcessIdentity::of(child.id()).unwrap();
        let mut watch = ExitWatch::Polled(identity);
        watch.signal(Signal::SIGKILL).unwrap();
        let reaper = std::thread::spawn(move || child.wait());
        tokio::time::timeout(Duration::from_secs(10), watch.exited())
            .await
            .expect("the watch saw the exit");
        reaper.join().unwrap().unwrap();
        assert!(
            watch.signal(Signal::SIGTERM).is_err(),
            "a gone process is never signalled"
        );
    }

    #[test]
    fn this_program_knows_the_path_it_was_started_as() {
        let path = exec_path().unwrap();
        assert!(path.is_absolute());
        assert!(same_file(&path, Path::new("/proc/self/exe")));
    }

    #[test]
    fn this_binary_is_known_by_its_file_or_its_bytes() {
        let own = exec_path().unwrap();
        assert_eq!(likeness_to_own_binary(&own).unwrap(), Likeness::SameFile);
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("mesos-docker-executor");
        std::fs::copy(&own, &copy).unwrap();
        assert_eq!(
            likeness_to_own_binary(&copy).unwrap(),
            Likeness::SameContent
        );
        let mut bytes = std::fs::read(&copy).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&copy, bytes).unwrap();
        assert_eq!(likeness_to_own_binary(&copy).unwrap(), Likeness::Other);
        std::fs::write(&copy, "#!/bin/sh\n").unwrap();
        assert_eq!(likeness_to_own_binary(&copy).unwrap(), Likeness::Other);
        assert!(likeness_to_own_binary(&dir.path().join("absent")).is_err());
    }
}
