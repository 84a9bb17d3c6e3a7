//! A real Apache Mesos for the suites that run one (`tests/real_mesos.rs`, `tests/deployment.rs`):
//! the install `MESOS_HOME` names, checked once, and what driving it needs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// How the suites that need a real Mesos are run, as `.ci/run` runs them.
pub const RUN_WITH_MESOS: &str = "MESOS_HOME=<install> cargo test --locked --features failpoints \
     --test real_mesos --test deployment -- --ignored";

/// The Mesos 1.x install `MESOS_HOME` names (its prefix: `bin/mesos-agent`, `libexec/mesos/`),
/// checked once; unset or broken, the test fails saying so.
pub fn mesos_home() -> PathBuf {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let home = std::env::var_os("MESOS_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "MESOS_HOME is not set: this suite needs a Mesos 1.x install prefix \
                     (sh ../shared/mesos/install.sh /opt/mesos installs one); run it as: {RUN_WITH_MESOS}"
                )
            });
        let agent = home.join("bin/mesos-agent");
        let out = Command::new(&agent).arg("--version").output();
        match out {
            Ok(o)
                if o.status.success()
                    && String::from_utf8_lossy(&o.stdout).starts_with("mesos 1.") => {}
            Ok(o) => panic!(
                "MESOS_HOME={}: {} --version does not answer `mesos 1.x`: {}{}",
                home.display(),
                agent.display(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!(
                "MESOS_HOME={}: cannot run {}: {e}; name the prefix of a Mesos 1.x install",
                home.display(),
                agent.display()
            ),
        }
        for executor in [
            "mesos-executor",
            "mesos-docker-executor",
            "mesos-containerizer",
        ] {
            assert!(
                home.join("libexec/mesos").join(executor).exists(),
                "MESOS_HOME={}: no libexec/mesos/{executor}",
                home.display()
            );
        }
        home
    })
    .clone()
}

/// A TCP port free on this host now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` on the master at `port`; `None` while it does not answer.
pub fn master_get(port: u16, path: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Writes a file root owns and nobody else can write, as the shim requires of its configuration.
pub fn write_root_file(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(
        path.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}
