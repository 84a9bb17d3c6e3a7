//! `gc`: removes siblings that have exited, whose run the agent marked completed or whose run's
//! meta directory is gone, and those left by a launch that died half-way (see
//! [`inventory::collect_reason`]). A running executor of a live run, or of a run that cannot be
//! judged from where `gc` runs, is never touched, and every sibling is judged again right
//! before it is removed. A container is a sibling only as [`crate::sibling::identity::judge`]
//! decides, however it is labelled: anything else is never removed, and no path its labels name
//! is opened.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Classify, Failure, ShimError};
use crate::mesos::checkpoint;
use crate::proc::process_gone;
use crate::sibling::engine::Engine;
use crate::sibling::inventory::{self, Collect};

/// What `gc` did with a sibling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Done {
    Removed,
    /// `--dry-run`.
    WouldRemove,
    Failed,
}

#[derive(Debug, Serialize)]
struct Action {
    name: String,
    container_id: String,
    reason: Collect,
    action: Done,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn main(
    config: Option<&Path>,
    dry_run: bool,
    every: Option<Duration>,
    labels: &[String],
    json: bool,
) -> Result<u8, ShimError> {
    let settings = super::operator_settings(config)?.settings;
    crate::runtime::current_thread()?.block_on(async {
        let engine = super::connect(&settings).await?;
        let one_pass = || pass(&engine, dry_run, labels, json);
        let Some(period) = every else {
            return one_pass().await;
        };
        // As a loop: a failed pass is reported and retried at the next period, and SIGTERM or
        // SIGINT ends the loop between passes.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .classify(Failure::Software)?;
        loop {
            if let Err(e) = one_pass().await {
                tracing::error!(error = %e, "gc pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = term.recv() => return Ok(0),
                _ = tokio::signal::ctrl_c() => return Ok(0),
            }
        }
    })
}

/// One pass. Exit status 1 when a removal failed.
async fn pass(
    engine: &Engine,
    dry_run: bool,
    labels: &[String],
    json: bool,
) -> Result<u8, ShimError> {
    let inventory = inventory::list(engine, labels, &[])
        .await
        .classify(Failure::Unavailable)?;
    let visible = inventory.host_pids_visible;
    let mut actions = Vec::new();
    for entry in &inventory.entries {
        if !dry_run {
            // A shim that died mid-rewrite leaves its complete temp file beside forked.pid. Its
            // writer is judged by the rule siblings' shims are: never from where host pids are
            // not visible, which would take a live shim's rewrite for a dead one's.
            if let Some(path) = &entry.forked_pid_path {
                checkpoint::remove_stale_temp_files(path, |writer| process_gone(writer, visible));
            }
        }
        let Some(reason) = inventory::collect_reason(entry) else {
            continue;
        };
        let (action, error) = if dry_run {
            (Done::WouldRemove, None)
        } else {
            // Judged again right before the removal: a relaunch may have adopted it, its shim
            // may have checkpointed it, since the listing.
            match inventory.recheck(engine, entry).await {
                Ok(Some(now)) if inventory::collect_reason(&now).is_some() => {
                    match engine.remove(&entry.docker_id).await {
                        Ok(()) => (Done::Removed, None),
                        Err(e) => (Done::Failed, Some(format!("{e:#}"))),
                    }
                }
                // Gone meanwhile, or no longer to be collected: nothing to do.
                Ok(_) => continue,
                Err(e) => (Done::Failed, Some(format!("{e:#}"))),
            }
        };
        actions.push(Action {
            name: entry.name.clone(),
            container_id: entry.container_id.clone(),
            reason,
            action,
            error,
        });
    }
    if json {
        super::print_json(&actions)?;
    } else {
        for a in &actions {
            let reason = a.reason.describe();
            let name = super::printable(&a.name);
            super::print(match (&a.action, &a.error) {
                (Done::Removed, _) => format!("removed {name} ({reason})"),
                (Done::WouldRemove, _) => format!("would remove {name} ({reason})"),
                (Done::Failed, e) => format!(
                    "failed to remove {name} ({reason}): {}",
                    super::printable(e.as_deref().unwrap_or_default())
                ),
            })?;
        }
        let kept = inventory.entries.len() - actions.len();
        super::print(format!(
            "{} sibling(s) collected, {kept} kept, {} labelled as siblings but not ones left alone",
            actions.len(),
            inventory.foreign.len()
        ))?;
    }
    Ok(if actions.iter().any(|a| a.action == Done::Failed) {
        1
    } else {
        0
    })
}
