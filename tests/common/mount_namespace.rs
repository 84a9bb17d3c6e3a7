//! A mount namespace of one's own with one directory mounted over another: how a shim started on
//! this host finds a test's (or the benchmark's) configuration at the relay's one fixed path,
//! while nothing on the host is mounted. Shared by the tests (`tests/common`) and the benchmark
//! harness (`benches/launch/main.rs`, through `#[path]`).

use std::path::Path;

/// Moves the calling process into a mount namespace of its own (private, so nothing propagates
/// back to the host) and mounts `source` over `target` there. Only system calls: safe between
/// fork and exec.
pub fn mount_over_in_own_namespace(source: &Path, target: &Path) -> nix::Result<()> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
}
