//! Docker daemons a test can take away and bring back without touching the one the rest of the
//! suite uses: a proxy of the suite's daemon on a socket of the test's own (cut at will), and a
//! private daemon with live-restore that the test starts, stops and restarts.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::docker;
use super::processes::{kill_tree, processes};

/// The suite's daemon, reached through a socket of this test's own: it counts the connections
/// open through it, and it can be cut, as a daemon that goes away.
pub struct DaemonProxy {
    pub socket: PathBuf,
    open: Arc<AtomicUsize>,
    cut: Arc<AtomicBool>,
    clients: Arc<Mutex<Vec<UnixStream>>>,
    hold: Arc<Hold>,
}

/// Requests held back from the daemon: once set, what a client sends is never forwarded, as a
/// daemon that hangs would leave it unanswered.
#[derive(Default)]
struct Hold {
    on: AtomicBool,
    held: AtomicUsize,
}

/// Copies what the client sends to the daemon, until the hold is set: then it counts what it
/// holds back and forwards nothing more.
fn forward_requests(mut from: UnixStream, mut to: UnixStream, hold: &Hold) {
    use std::io::{Read, Write};
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if hold.on.load(Ordering::SeqCst) {
            hold.held.fetch_add(1, Ordering::SeqCst);
            return;
        }
        if to.write_all(&buf[..n]).is_err() {
            return;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

impl DaemonProxy {
    pub fn start(socket: &Path) -> DaemonProxy {
        let listener = UnixListener::bind(socket).unwrap();
        let proxy = DaemonProxy {
            socket: socket.to_path_buf(),
            open: Arc::default(),
            cut: Arc::default(),
            clients: Arc::default(),
            hold: Arc::default(),
        };
        let (open, cut, clients) = (proxy.open.clone(), proxy.cut.clone(), proxy.clients.clone());
        let hold = proxy.hold.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if cut.load(Ordering::SeqCst) {
                    return;
                }
                let upstream = UnixStream::connect("/var/run/docker.sock").unwrap();
                clients.lock().unwrap().push(client.try_clone().unwrap());
                open.fetch_add(1, Ordering::SeqCst);
                let done = Arc::new(AtomicUsize::new(0));
                for (requests, mut from, mut to) in [
                    (
                        true,
                        client.try_clone().unwrap(),
                        upstream.try_clone().unwrap(),
                    ),
                    (
                        false,
                        upstream.try_clone().unwrap(),
                        client.try_clone().unwrap(),
                    ),
                ] {
                    let (open, done, hold) = (open.clone(), done.clone(), hold.clone());
                    std::thread::spawn(move || {
                        if requests {
                            forward_requests(from, to, &hold);
                        } else {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        }
                        // The connection is closed once both directions have ended.
                        if done.fetch_add(1, Ordering::SeqCst) == 1 {
                            open.fetch_sub(1, Ordering::SeqCst);
                        }
                    });
                }
            }
        });
        proxy
    }

    /// Connections open through the proxy now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// The daemon hangs: what clients send from now on is never answered.
    pub fn hold(&self) {
        self.hold.on.store(true, Ordering::SeqCst);
    }

    /// How many requests the hold has kept from the daemon.
    pub fn held(&self) -> usize {
        self.hold.held.load(Ordering::SeqCst)
    }

    /// The daemon goes away: no new connection, and every open one is broken.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the cut, then take the socket away.
        let _ = UnixStream::connect(&self.socket);
        let _ = std::fs::remove_file(&self.socket);
        for client in self.clients.lock().unwrap().drain(..) {
            let _ = client.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for DaemonProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// A Docker daemon of the test's own, with live-restore, on its own socket, data root, exec root
/// and pidfile, and the containerd it starts: restarted at will, never the suite's daemon.
pub struct PrivateDaemon {
    pub name: String,
    live_restore: bool,
    pub host: String,
    pub socket: PathBuf,
    data_root: PathBuf,
    exec_root: PathBuf,
    pidfile: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

impl PrivateDaemon {
    pub fn start(name: &str) -> PrivateDaemon {
        PrivateDaemon::start_with(name, true)
    }

    /// A private daemon with live-restore on or off.
    pub fn start_with(name: &str, live_restore: bool) -> PrivateDaemon {
        // In a directory of its own, as operators are told to keep it (a sibling's view of a
        // directory sees the socket a restart makes anew).
        let socket = PathBuf::from(format!("/run/{name}-api/docker.sock"));
        let mut daemon = PrivateDaemon {
            name: name.to_string(),
            live_restore,
            host: format!("unix://{}", socket.display()),
            socket,
            data_root: PathBuf::from(format!("/var/lib/{name}")),
            exec_root: PathBuf::from(format!("/run/{name}")),
            pidfile: PathBuf::from(format!("/run/{name}.pid")),
            log: PathBuf::from(format!("/tmp/{name}.log")),
            process: None,
        };
        daemon.launch();
        daemon
    }

    fn launch(&mut self) {
        assert!(
            self.try_launch(),
            "the private daemon does not answer; its log ({}):\n{}",
            self.log.display(),
            self.log()
        );
    }

    /// Starts dockerd on this daemon's roots; whether it answered within a minute.
    fn try_launch(&mut self) -> bool {
        std::fs::create_dir_all(self.socket.parent().unwrap()).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("dockerd")
            .arg(format!("--host={}", self.host))
            .arg(format!("--data-root={}", self.data_root.display()))
            .arg(format!("--exec-root={}", self.exec_root.display()))
            .arg(format!("--pidfile={}", self.pidfile.display()))
            .args(self.live_restore.then_some("--live-restore"))
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
            .expect("dockerd must be installed for the daemon-restart tests (Debian: docker.io)");
        self.process = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if self
                .docker(&["info", "--format", "{{.ServerVersion}}"])
                .status
                .success()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    /// The containerd this daemon started, if it runs.
    fn containerd(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.exec_root.join("containerd/containerd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            .is_ok()
            .then_some(pid)
    }

    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["-H", self.host.as_str()];
        all.extend(args);
        docker(&all)
    }

    /// Copies an image of the suite's daemon into this one.
    pub fn load(&self, image: &str) {
        let status = Command::new("sh")
            .args([
                "-c",
                &format!("docker save {image} | docker -H {} load -q", self.host),
            ])
            .status()
            .unwrap();
        assert!(status.success(), "loading {image} into {}", self.name);
    }

    /// Stops the daemon with `signal` (live-restore: its containers keep running) and waits for
    /// it to be gone, and for the containerd it started when that goes with it (a SIGKILLed
    /// dockerd takes its containerd along, which a restart must not find half-dead).
    pub fn stop(&mut self, signal: nix::sys::signal::Signal) {
        let mut child = self.process.take().expect("the daemon runs");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        child.wait().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.containerd().is_some() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }

    /// Starts it again, with the same roots: it restores the containers it finds.
    pub fn restart(&mut self) {
        self.launch();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        // With live-restore its containers outlive it: remove them through it, started again
        // if a failed test left it stopped.
        if self.process.is_some() || self.try_launch() {
            let ids = self.docker(&["ps", "-aq"]);
            let ids = String::from_utf8_lossy(&ids.stdout).to_string();
            for id in ids.split_whitespace() {
                let _ = self.docker(&["rm", "-f", id]);
            }
            self.stop(nix::sys::signal::Signal::SIGTERM);
        }
        // Whatever still runs of its containers: their shims and everything below them.
        let exec_root = self.exec_root.display().to_string();
        for shim in processes().filter(|(_, _, cmdline)| {
            cmdline.contains("containerd-shim") && cmdline.contains(&exec_root)
        }) {
            kill_tree(shim.0);
        }
        if let Some(pid) = self.containerd() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Whatever it left mounted under its roots, deepest first.
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounted: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|m| {
                Path::new(m).starts_with(&self.exec_root)
                    || Path::new(m).starts_with(&self.data_root)
            })
            .collect();
        mounted.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in mounted {
            let _ = Command::new("umount").args(["-l", mount]).status();
        }
        for root in [&self.exec_root, &self.data_root] {
            let _ = std::fs::remove_dir_all(root);
        }
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(self.socket.parent().unwrap());
        let _ = std::fs::remove_file(&self.log);
    }
}
