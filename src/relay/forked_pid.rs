//! Keeping `forked.pid`: the agent's checkpoint of the pid it forked, pointed at the sibling's
//! process so that a restarted agent finds the executor, and guarded for a bounded window.

use std::path::Path;

use crate::error::{fail, Classify, Failure, ShimError};
use crate::failpoint;
use crate::mesos::checkpoint::{self, ForkedPidGuard, HostPid, PidFile, StagedWrite};
use crate::proc::{process_gone, PidCheck};
use crate::relay::effects::HostProcesses;
use crate::relay::plan::LaunchPlan;

/// How often the launch looks for the agent's own forked.pid while it waits for it (bounded by
/// `forked_pid_timeout`; a 1.x agent writes it before the shim even starts).
const FORKED_PID_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Waits (bounded) for the agent's own forked.pid, replaces it with the sibling's pid, verifies
/// it, and returns the guard that undoes other writes for a bounded window. Without the agent's
/// file after the wait, it is written anyway if the agent made its directory, and guarded long
/// enough for an old agent's late write to be undone. A pid that is no longer the sibling's
/// (the executor has exited) is never written.
pub(crate) async fn take_over<H: HostProcesses>(
    host: &H,
    plan: &LaunchPlan,
    pid: HostPid,
    sibling_id: &str,
) -> Result<ForkedPidGuard, ShimError> {
    let path = plan.forked_pid.as_path();
    let timeout = plan.forked_pid_timeout;
    let found = checkpoint::wait_for_pid_file(path, timeout, FORKED_PID_POLL)
        .await
        .classify(Failure::Software)?;
    if !found {
        tracing::warn!(path = %path.display(), ?timeout, "the agent has not checkpointed forked.pid; writing it for the sibling");
    }
    let dir = path.parent().expect("forked.pid has a directory");
    // Opened once, without a link, for the write below.
    let dir_fd = match crate::no_follow::open_dir(dir) {
        Ok(fd) => fd,
        Err(crate::no_follow::PathError::Missing(_)) => {
            return Err(fail(
                Failure::Software,
                format!(
                    "the agent made the run's meta directory, but {} does not exist after {:?}; check that \
                     the shim sees the agent's work_dir at the same path, or raise forked_pid_timeout",
                    dir.display(),
                    timeout
                ),
            ))
        }
        Err(e) => {
            return Err(fail(
                Failure::Software,
                format!("refusing to checkpoint in {}: {e}", dir.display()),
            ))
        }
    };
    // The agent's checkpoint names the process it forked: the shim, or the launch helper that
    // forked the shim. A pid that is neither is not this launch's to replace.
    if let PidFile::Pid(named) = checkpoint::read_pid_file(path).classify(Failure::Software)? {
        if named != pid.get() && !plan.agent_forked.contains(&named) {
            return Err(fail(
                Failure::Software,
                format!(
                    "{} names pid {named}, which is not the process the agent forked for this launch \
                     (one of {:?}); leaving the checkpoint as it is",
                    path.display(),
                    plan.agent_forked
                ),
            ));
        }
    }
    let window = if found {
        plan.forked_pid_guard
    } else {
        timeout.max(plan.forked_pid_guard)
    };
    // Watching starts before the write, so that a write racing it is seen.
    let guard = ForkedPidGuard::new(path, window);
    failpoint!(plan.pause_at, BeforeCheckpoint);
    if host.confirm(pid, sibling_id) == PidCheck::Confirmed {
        remove_stale_temp_files(path);
        let staged = StagedWrite::stage_in(dir_fd, path, pid.to_string().as_bytes())
            .classify(Failure::Software)?;
        failpoint!(plan.pause_at, DuringCheckpoint);
        staged.commit().classify(Failure::Software)?;
        // The end of the launch's timeline, for the benchmark harness (see `docker request`).
        tracing::debug!(at_ns = crate::proc::monotonic_ns(), "forked.pid written");
    }
    // Read back, and put right whatever raced the write.
    repoint_at_sibling(host, path, pid, sibling_id).classify(Failure::Software)?;
    tracing::info!(path = %path.display(), host_pid = pid.get(), "forked.pid now names the sibling");
    failpoint!(plan.pause_at, AfterCheckpoint);
    Ok(guard)
}

/// The relay sees host pids (it has just confirmed the sibling's), so a temp file whose writer
/// is missing here was left by a shim that died mid-write.
fn remove_stale_temp_files(path: &Path) {
    checkpoint::remove_stale_temp_files(path, |writer| process_gone(writer, true));
}

/// Makes forked.pid hold the sibling's pid, as long as that pid is still the sibling's, and
/// verifies it by reading it back. Returns whether it had to write.
pub(crate) fn repoint_at_sibling<H: HostProcesses>(
    host: &H,
    path: &Path,
    pid: HostPid,
    sibling_id: &str,
) -> std::io::Result<bool> {
    remove_stale_temp_files(path);
    let mut wrote = false;
    for _ in 0..3 {
        match checkpoint::read_pid_file(path)? {
            PidFile::Pid(p) if p == pid.get() => return Ok(wrote),
            other => {
                if host.confirm(pid, sibling_id) != PidCheck::Confirmed {
                    // The executor has exited; its exit is on its way to the shim.
                    return Ok(wrote);
                }
                if other != PidFile::Absent {
                    tracing::info!(path = %path.display(), found = ?other, host_pid = pid.get(), "pointing forked.pid at the sibling");
                }
                checkpoint::write_pid_file(path, pid)?;
                wrote = true;
            }
        }
    }
    match checkpoint::read_pid_file(path)? {
        PidFile::Pid(p) if p == pid.get() => Ok(wrote),
        other => Err(std::io::Error::other(format!(
            "{} keeps changing (now {other:?})",
            path.display()
        ))),
    }
}
