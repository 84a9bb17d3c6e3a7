//! The Mesos container the launch runs in: what the agent and its isolators set up for the
//! executor before they ran it (here: the shim), read from this very process. Its user and
//! groups, its capabilities, its rlimits, `no_new_privs`; its namespaces and root filesystem.
//!
//! The sibling carries what Docker can express exactly ([`SiblingSecurity`]); what it cannot
//! carry is named by [`Obstacle`], so that the launch is handed back to the stock executor or
//! refused before the task runs, never silently loosened.

use std::fmt;

/// Linux's capabilities by number (`include/uapi/linux/capability.h`), as Docker names them.
const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capabilities Docker gives a container by default (moby's `oci/caps/defaults.go`): a
/// sibling gets these where the launch had them, never one the launch lacked.
const DOCKER_DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// The rlimits Docker can set (`--ulimit` names), with their resource numbers.
const RLIMITS: [(&str, nix::sys::resource::Resource); 15] = {
    use nix::sys::resource::Resource as R;
    [
        ("as", R::RLIMIT_AS),
        ("core", R::RLIMIT_CORE),
        ("cpu", R::RLIMIT_CPU),
        ("data", R::RLIMIT_DATA),
        ("fsize", R::RLIMIT_FSIZE),
        ("locks", R::RLIMIT_LOCKS),
        ("memlock", R::RLIMIT_MEMLOCK),
        ("msgqueue", R::RLIMIT_MSGQUEUE),
        ("nice", R::RLIMIT_NICE),
        ("nofile", R::RLIMIT_NOFILE),
        ("nproc", R::RLIMIT_NPROC),
        ("rtprio", R::RLIMIT_RTPRIO),
        ("rttime", R::RLIMIT_RTTIME),
        ("sigpending", R::RLIMIT_SIGPENDING),
        ("stack", R::RLIMIT_STACK),
    ]
};

/// What the launch's process was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchContext {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Effective and bounding capability sets, as bit masks.
    pub cap_effective: u64,
    pub cap_bounding: u64,
    pub no_new_privs: bool,
    /// `(name, soft, hard)`; `None` for unlimited.
    pub rlimits: Vec<(&'static str, Option<u64>, Option<u64>)>,
}

impl LaunchContext {
    /// Reads this process's context (`/proc/self/status`, `getrlimit`).
    pub fn read() -> std::io::Result<LaunchContext> {
        let status = crate::proc::read_self("status")?;
        let mut context = LaunchContext::parse_status(&status).ok_or_else(|| {
            std::io::Error::other("/proc/self/status lacks Uid, Gid, Groups or the capability sets")
        })?;
        for (name, resource) in RLIMITS {
            let (soft, hard) = nix::sys::resource::getrlimit(resource)?;
            let limited = |v: u64| (v != nix::sys::resource::RLIM_INFINITY).then_some(v);
            context.rlimits.push((name, limited(soft), limited(hard)));
        }
        Ok(context)
    }

    /// The fields of `/proc/<pid>/status` it needs (rlimits come from `getrlimit`).
    pub(crate) fn parse_status(status: &str) -> Option<LaunchContext> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let first = |name: &str| field(name)?.split_whitespace().next()?.parse().ok();
        let mask = |name: &str| u64::from_str_radix(field(name)?, 16).ok();
        Some(LaunchContext {
            uid: first("Uid")?,
            gid: first("Gid")?,
            groups: field("Groups")?
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect(),
            cap_effective: mask("CapEff")?,
            cap_bounding: mask("CapBnd")?,
            no_new_privs: field("NoNewPrivs") == Some("1"),
            rlimits: Vec::new(),
        })
    }
}

/// Names of the capabilities in `mask`.
pub(crate) fn capability_names(mask: u64) -> Vec<&'static str> {
    CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// What the sibling is given so that its executor has no more than the launch had.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiblingSecurity {
    /// `uid:gid`.
    pub user: String,
    pub group_add: Vec<String>,
    /// Always `ALL`: the sibling gets only [`SiblingSecurity::cap_add`].
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    /// Capabilities the configuration's `cap_add` named that the launch's bounding set lacks:
    /// never given.
    pub refused_cap_add: Vec<String>,
    /// `(name, soft, hard)`, unlimited as -1 (Docker's word for it).
    pub ulimits: Vec<(String, i64, i64)>,
    pub security_opt: Vec<String>,
}

impl SiblingSecurity {
    /// The sibling's share of `launch`: Docker's default capabilities where the launch had them,
    /// plus the configuration's `cap_add` within the launch's bounding set; the launch's user,
    /// groups and rlimits; `no-new-privileges` where the launch had it.
    pub fn of(launch: &LaunchContext, configured_cap_add: &[String]) -> SiblingSecurity {
        let had = capability_names(launch.cap_effective);
        let bounding = capability_names(launch.cap_bounding);
        let mut cap_add: Vec<String> = DOCKER_DEFAULT_CAPABILITIES
            .iter()
            .filter(|c| had.contains(c))
            .map(|c| c.to_string())
            .collect();
        let mut refused_cap_add = Vec::new();
        for configured in configured_cap_add {
            let name = configured
                .trim_start_matches("CAP_")
                .trim_start_matches("cap_")
                .to_ascii_uppercase();
            if !bounding.contains(&name.as_str()) {
                refused_cap_add.push(name);
            } else if !cap_add.contains(&name) {
                cap_add.push(name);
            }
        }
        let unlimited = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(-1));
        SiblingSecurity {
            user: format!("{}:{}", launch.uid, launch.gid),
            group_add: launch.groups.iter().map(u32::to_string).collect(),
            cap_drop: vec!["ALL".into()],
            cap_add,
            refused_cap_add,
            ulimits: launch
                .rlimits
                .iter()
                .map(|(name, soft, hard)| (name.to_string(), unlimited(*soft), unlimited(*hard)))
                .collect(),
            security_opt: if launch.no_new_privs {
                vec!["no-new-privileges".into()]
            } else {
                Vec::new()
            },
        }
    }
}

/// What a sibling cannot carry of the launch's Mesos container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Obstacle {
    /// The launch runs as a user that cannot reach Docker nor rewrite the agent's `pids/`
    /// (the agent's `--switch_user`).
    NotRoot { uid: u32 },
    /// The launch is in a network namespace of its own (`network/cni`, `network/port_mapping`).
    OwnNetworkNamespace,
    /// The launch is in a PID namespace of its own (`namespaces/pid`).
    OwnPidNamespace,
    /// The command executor is to chroot its task into a container image (`--rootfs`).
    ContainerImage,
}

impl fmt::Display for Obstacle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Obstacle::NotRoot { uid } => write!(
                f,
                "the launch runs as uid {uid} (the agent's --switch_user runs the executor as the framework's \
                 user), which can neither reach Docker nor rewrite the agent's forked.pid; run the agent with \
                 --switch_user=false, or frameworks as root"
            ),
            Obstacle::OwnNetworkNamespace => write!(
                f,
                "the launch is in a network namespace of its own (a network isolator: network/cni, \
                 network/port_mapping), which a sibling on the host's network would not keep"
            ),
            Obstacle::OwnPidNamespace => write!(
                f,
                "the launch is in a PID namespace of its own (the namespaces/pid isolator), which a sibling in \
                 the host's PID namespace would not keep"
            ),
            Obstacle::ContainerImage => write!(
                f,
                "the task has a container image (--rootfs, the filesystem/linux isolator): its provisioned root \
                 filesystem and the sandbox at /mnt/mesos/sandbox exist only in the agent's mount namespace"
            ),
        }
    }
}

/// What the shim does with what an agent flag asks of its containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The sibling keeps it exactly.
    Carried,
    /// Launches that use it are handed back to the stock executor, or refused where none is
    /// reachable.
    HandedBack,
    /// The shim does not carry it, and does not stop the launch (a known limit, in docs/faults.md).
    NotCarried,
}

/// The verdict on one of the agent's `--isolation` entries, and why.
pub(crate) fn isolator_verdict(isolator: &str) -> (Verdict, &'static str) {
    match isolator {
        "posix/cpu" | "posix/mem" | "posix/disk" => (Verdict::Carried, "accounting only"),
        i if i.starts_with("cgroups/") => (
            Verdict::Carried,
            "the sibling joins the Mesos container's cgroup (linux launcher, cgroups v1, cgroupfs driver)",
        ),
        "filesystem/posix" | "disk/du" => (
            Verdict::Carried,
            "persistent volumes the sandbox links to are mounted",
        ),
        "linux/capabilities" => (Verdict::Carried, "the launch's capability sets bound the sibling's"),
        "posix/rlimits" => (Verdict::Carried, "the launch's rlimits become the sibling's"),
        "filesystem/linux" | "docker/runtime" | "volume/host_path" | "volume/sandbox_path"
        | "docker/volume" | "volume/secret" | "volume/image" | "volume/csi" => (
            Verdict::HandedBack,
            "launches with a container image are handed back or refused; volumes it mounts in the \
             executor's mount namespace do not reach the sibling",
        ),
        i if i.starts_with("network/") => (
            Verdict::HandedBack,
            "a launch in a network namespace of its own is handed back or refused",
        ),
        "namespaces/pid" | "namespaces/ipc" => (
            Verdict::HandedBack,
            "a launch in a PID namespace of its own is handed back or refused",
        ),
        _ => (Verdict::NotCarried, "not known to the shim: check what it isolates"),
    }
}

/// What of `launch` a sibling cannot carry, in the order an operator would fix it. `args`: the
/// executor's arguments; `own_namespaces`: whether this process's network and PID namespaces
/// differ from the agent process's (`None`: cannot tell, taken as the same).
pub(crate) fn obstacles(
    launch: &LaunchContext,
    args: &[String],
    own_network: Option<bool>,
    own_pid: Option<bool>,
) -> Vec<Obstacle> {
    let mut found = Vec::new();
    if launch.uid != 0 {
        found.push(Obstacle::NotRoot { uid: launch.uid });
    }
    if own_network == Some(true) {
        found.push(Obstacle::OwnNetworkNamespace);
    }
    if own_pid == Some(true) {
        found.push(Obstacle::OwnPidNamespace);
    }
    if args
        .iter()
        .any(|a| a == "--rootfs" || a.starts_with("--rootfs="))
    {
        found.push(Obstacle::ContainerImage);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tsh\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n\
        Groups:\t0 10 27 \nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\n\
        CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\n";

    #[test]
    fn reads_the_launch_context_from_status() {
        let c = LaunchContext::parse_status(STATUS).unwrap();
        assert_eq!((c.uid, c.gid, c.groups.clone()), (0, 0, vec![0, 10, 27]));
        assert!(!c.no_new_privs);
        // Docker's default set is 0xa80425fb.
        let mut names = capability_names(c.cap_effective);
        names.sort();
        let mut default = DOCKER_DEFAULT_CAPABILITIES.to_vec();
        default.sort();
        assert_eq!(names, default);
        let own = LaunchContext::read().unwrap();
        assert_eq!(own.uid, nix::unistd::getuid().as_raw());
        assert_eq!(own.rlimits.len(), RLIMITS.len());
    }

    #[test]
    fn a_sibling_never_gets_a_capability_the_launch_lacked() {
        let mut c = LaunchContext::parse_status(STATUS).unwrap();
        // The launch lost NET_RAW (13) and CHOWN (0): an isolator dropped them.
        c.cap_effective &= !((1 << 13) | 1);
        c.cap_bounding &= !(1 << 13);
        c.rlimits = vec![("nofile", Some(1234), Some(1234)), ("core", None, None)];
        c.no_new_privs = true;
        let s = SiblingSecurity::of(
            &c,
            &[
                "cap_net_raw".into(),
                "CAP_SYS_PTRACE".into(),
                "CHOWN".into(),
            ],
        );
        assert_eq!(s.cap_drop, vec!["ALL"]);
        assert!(
            !s.cap_add.contains(&"NET_RAW".to_string()),
            "{:?}",
            s.cap_add
        );
        assert!(s.cap_add.contains(&"KILL".to_string()));
        // CHOWN is in the bounding set: the operator's cap_add may give it back.
        assert!(s.cap_add.contains(&"CHOWN".to_string()));
        assert_eq!(s.refused_cap_add, vec!["NET_RAW", "SYS_PTRACE"]);
        assert_eq!(
            s.ulimits,
            vec![("nofile".into(), 1234, 1234), ("core".into(), -1, -1)]
        );
        assert_eq!(s.security_opt, vec!["no-new-privileges"]);
        assert_eq!(s.group_add, vec!["0", "10", "27"]);
        assert_eq!(s.user, "0:0");
    }

    #[test]
    fn every_isolator_has_a_verdict() {
        assert_eq!(isolator_verdict("posix/rlimits").0, Verdict::Carried);
        assert_eq!(isolator_verdict("cgroups/mem").0, Verdict::Carried);
        assert_eq!(isolator_verdict("network/cni").0, Verdict::HandedBack);
        assert_eq!(isolator_verdict("filesystem/linux").0, Verdict::HandedBack);
        assert_eq!(isolator_verdict("gpu/nvidia").0, Verdict::NotCarried);
    }

    #[test]
    fn what_a_sibling_cannot_carry_is_named() {
        let mut c = LaunchContext::parse_status(STATUS).unwrap();
        assert!(obstacles(&c, &[], Some(false), Some(false)).is_empty());
        assert!(
            obstacles(&c, &[], None, None).is_empty(),
            "unknown is not an obstacle"
        );
        c.uid = 65534;
        let found = obstacles(
            &c,
            &["--rootfs=/var/lib/mesos/provisioner/x".into()],
            Some(true),
            Some(true),
        );
        assert_eq!(
            found,
            vec![
                Obstacle::NotRoot { uid: 65534 },
                Obstacle::OwnNetworkNamespace,
                Obstacle::OwnPidNamespace,
                Obstacle::ContainerImage
            ]
        );
        assert!(found[0].to_string().contains("--switch_user"));
    }
}
