//! The benchmark's own Docker daemon: started by the harness on roots and a socket of its own,
//! so that a thousand containers starting and exiting never touch the host's daemon, and stopped
//! and wiped when the harness ends, by a panic too (the bench profile aborts, so the panic hook
//! does it, not a `Drop`).
//!
//! Docker 20.10 before 20.10.25 can deadlock when hundreds of containers on the host network exit
//! at once (moby#46661): the harness removes containers twenty at a time, each batch bounded, and
//! a daemon that stops answering is killed and started again on the same roots (and counted).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::processes::{kill_tree, processes};

/// Containers removed at once: few enough that their exits never pile up in the daemon (with 50
/// at once, 20.10.24 deadlocked here once in a thousand removals).
const REMOVAL_BATCH: usize = 20;
/// How long a daemon may take to answer once started: restarted with a thousand containers on
/// its roots, it first cleans up each one's network sandbox.
const START_PATIENCE: Duration = Duration::from_secs(600);
/// How long a batch of removals (or any one CLI call) may take before the daemon is deemed hung.
const CALL_PATIENCE: Duration = Duration::from_secs(180);

/// Where the daemon keeps everything: all of it goes when the harness ends.
#[derive(Clone)]
pub struct Roots {
    pub socket: PathBuf,
    data_root: PathBuf,
    exec_root: PathBuf,
    pidfile: PathBuf,
    pub log: PathBuf,
}

pub struct PrivateDaemon {
    pub roots: Roots,
    pub host: String,
    process: Mutex<Option<Child>>,
    /// Times it stopped answering and was killed and started again.
    pub restarts: Mutex<u32>,
}

/// What the panic hook must clean up.
static RUNNING: Mutex<Option<Roots>> = Mutex::new(None);
/// Directories of the harness's own, removed when it ends (by a panic too).
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Has `dir` removed when the harness ends, however it ends.
pub fn remove_at_exit(dir: &Path) {
    SCRATCH.lock().unwrap().push(dir.to_path_buf());
}

fn remove_scratch() {
    for dir in SCRATCH
        .lock()
        .map(|mut d| std::mem::take(&mut *d))
        .unwrap_or_default()
    {
        let _ = std::fs::remove_dir_all(dir);
    }
}

impl PrivateDaemon {
    /// Starts dockerd on roots named after `name`; waits until it answers.
    pub fn start(name: &str) -> PrivateDaemon {
        let socket = PathBuf::from(format!("/run/{name}-api/docker.sock"));
        let roots = Roots {
            socket: socket.clone(),
            data_root: PathBuf::from(format!("/var/lib/{name}")),
            exec_root: PathBuf::from(format!("/run/{name}")),
            pidfile: PathBuf::from(format!("/run/{name}.pid")),
            log: PathBuf::from(format!("/tmp/{name}.log")),
        };
        *RUNNING.lock().unwrap() = Some(roots.clone());
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            if let Some(roots) = RUNNING.lock().ok().and_then(|mut r| r.take()) {
                eprintln!(
                    "bench: panicked; killing and wiping the private daemon (its log: {})",
                    roots.log.display()
                );
                wipe(&roots);
            }
            remove_scratch();
        }));
        let daemon = PrivateDaemon {
            host: format!("unix://{}", socket.display()),
            roots,
            process: Mutex::new(None),
            restarts: Mutex::new(0),
        };
        daemon.launch();
        daemon
    }

    fn launch(&self) {
        let r = &self.roots;
        std::fs::create_dir_all(r.socket.parent().unwrap()).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&r.log)
            .unwrap();
        let child = Command::new("dockerd")
            .arg(format!("--host={}", self.host))
            .arg(format!("--data-root={}", r.data_root.display()))
            .arg(format!("--exec-root={}", r.exec_root.display()))
            .arg(format!("--pidfile={}", r.pidfile.display()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd (Debian: docker.io) for the benchmark's private daemon");
        *self.process.lock().unwrap() = Some(child);
        let deadline = Instant::now() + START_PATIENCE;
        while self
            .try_docker(
                &["info", "--format", "{{.ServerVersion}}"],
                Duration::from_secs(10),
            )
            .is_none_or(|o| !o.status.success())
        {
            assert!(
                Instant::now() < deadline,
                "the private daemon does not answer; its log: {}",
                r.log.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills a daemon that stopped answering and starts it again on the same roots.
    fn restart(&self) {
        eprintln!("bench: the private daemon hangs (moby#46661?); killing and restarting it");
        *self.restarts.lock().unwrap() += 1;
        if let Some(mut child) = self.process.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        kill_containerd(&self.roots);
        self.launch();
    }

    /// `docker -H <this daemon> args`, bounded by `patience`: `None` if it did not return.
    pub fn try_docker(&self, args: &[&str], patience: Duration) -> Option<Output> {
        let mut child = Command::new("docker")
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the docker CLI");
        let deadline = Instant::now() + patience;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(child.wait_with_output().unwrap())
    }

    /// `docker args` on this daemon, which must succeed; a hung daemon is restarted once.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = match self.try_docker(args, CALL_PATIENCE) {
            Some(out) => out,
            None => {
                self.restart();
                self.try_docker(args, CALL_PATIENCE)
                    .unwrap_or_else(|| panic!("docker {args:?}: the private daemon hangs"))
            }
        };
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Copies `image` from the host's daemon into this one.
    pub fn load(&self, image: &str) {
        let status = Command::new("sh")
            .args([
                "-c",
                &format!("docker save {image} | docker -H {} load -q", self.host),
            ])
            .status()
            .unwrap();
        assert!(status.success(), "loading {image} into the private daemon");
    }

    /// Removes the containers `names` (missing ones are fine) a batch at a time.
    pub fn remove_gradually(&self, names: &[String]) {
        for batch in names.chunks(REMOVAL_BATCH) {
            let mut args = vec!["rm", "-f"];
            args.extend(batch.iter().map(String::as_str));
            if self.try_docker(&args, CALL_PATIENCE).is_none() {
                self.restart();
                let _ = self.try_docker(&args, CALL_PATIENCE);
            }
        }
    }

    /// Removes every container left, gradually, stops the daemon and wipes its roots.
    pub fn stop(self) {
        let left = self.docker(&["ps", "-aq"]);
        let left: Vec<String> = left.split_whitespace().map(String::from).collect();
        self.remove_gradually(&left);
        if let Some(mut child) = self.process.lock().unwrap().take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
        RUNNING.lock().unwrap().take();
        wipe(&self.roots);
        remove_scratch();
        let _ = std::fs::remove_file(&self.roots.log);
    }
}

/// Kills the daemon's containerd, its containers' shims and what runs below them, then removes
/// its roots (what it left mounted first).
fn wipe(roots: &Roots) {
    let exec_root = roots.exec_root.display().to_string();
    for (pid, _, cmdline) in processes() {
        let ours =
            cmdline.contains(&exec_root) || cmdline.contains(&*roots.socket.to_string_lossy());
        if ours && (cmdline.starts_with("dockerd") || cmdline.contains("containerd-shim")) {
            kill_tree(pid);
        }
    }
    kill_containerd(roots);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounted: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| {
            Path::new(m).starts_with(&roots.exec_root) || Path::new(m).starts_with(&roots.data_root)
        })
        .collect();
    mounted.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for mount in mounted {
        let _ = Command::new("umount").args(["-l", mount]).status();
    }
    for root in [&roots.exec_root, &roots.data_root] {
        let _ = std::fs::remove_dir_all(root);
    }
    let _ = std::fs::remove_file(&roots.socket);
    let _ = std::fs::remove_dir(roots.socket.parent().unwrap());
    let _ = std::fs::remove_file(&roots.pidfile);
}

fn kill_containerd(roots: &Roots) {
    let pidfile = roots.exec_root.join("containerd/containerd.pid");
    if let Some(pid) = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while nix::sys::signal::kill(pid, None).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
