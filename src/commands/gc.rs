//! `gc`: removes siblings that have exited, whose run the agent marked completed or whose run's
//! meta directory is gone, and those left by a launch that died half-way (see
//! [`inventory::verdict`]): only what it can prove dead, whatever release made it. A running
//! executor of a live run, or of a run that cannot be judged from where `gc` runs, is never
//! touched; nor is a sibling whose labels it cannot read (newer than it, see
//! [`crate::sibling::label_sets`]), which it names with the reason; where host pids are not
//! seen, no pid is judged dead. Every sibling is judged again right before it is removed. A container is a sibling only as [`crate::sibling::identity::judge`]
//! decides, however it is labelled: anything else is never removed, and no path its labels name
//! is opened.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::engine::Engine;
use crate::error::{Classify, Failure, ShimError, PROBLEM_FOUND, SUCCESS};
use crate::mesos::checkpoint;
use crate::proc::process_gone;
use crate::sibling::inventory::{self, CannotJudge, Collect, Inventory, SiblingEntry, Verdict};

/// What `gc` did with a sibling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Done {
    Removed,
    /// `--dry-run`.
    WouldRemove,
    Failed,
}

/// A sibling `gc` kept because it could not judge it.
#[derive(Debug)]
struct Kept {
    name: String,
    cannot_judge: CannotJudge,
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
        match every {
            None => one_pass().await,
            Some(period) => every_period(period, one_pass).await,
        }
    })
}

/// `gc --every`: a pass each `period`, a failed one reported and retried at the next, until
/// SIGTERM or SIGINT. Both are caught once, before the first pass, so that none is lost between
/// passes; each pass and each wait is raced against them, so that the loop ends within moments
/// at any point. A pass cut short is dropped where it waits: a removal request already sent is
/// left to the daemon (a removal is whole or not at all), the rest of the pass is not done.
async fn every_period<F>(period: Duration, one_pass: impl Fn() -> F) -> Result<u8, ShimError>
where
    F: std::future::Future<Output = Result<u8, ShimError>>,
{
    let mut stop = Stop::catch()?;
    loop {
        tokio::select! {
            done = one_pass() => if let Err(e) = done {
                tracing::error!(error = %e, "gc pass failed");
            },
            signal = stop.received() => {
                tracing::warn!(signal, "gc stopped during a pass; the rest of it is not done");
                return Ok(SUCCESS);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.received() => return Ok(SUCCESS),
        }
    }
}

/// SIGTERM and SIGINT, caught for the whole life of the loop.
struct Stop {
    term: Signal,
    int: Signal,
}

impl Stop {
    fn catch() -> Result<Stop, ShimError> {
        Ok(Stop {
            term: signal(SignalKind::terminate()).classify(Failure::Software)?,
            int: signal(SignalKind::interrupt()).classify(Failure::Software)?,
        })
    }

    /// The next of them, by name; a signal that came while nothing waited is kept for this.
    async fn received(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// One pass. [`PROBLEM_FOUND`] when a removal failed.
async fn pass(
    engine: &Engine,
    dry_run: bool,
    labels: &[String],
    json: bool,
) -> Result<u8, ShimError> {
    let inventory = inventory::list(engine, labels, &[])
        .await
        .classify(Failure::Unavailable)?;
    super::say_if_pids_unseen(&inventory.host_pids, json)?;
    let visible = inventory.host_pids.seen();
    let mut actions = Vec::new();
    let mut kept = Vec::new();
    for entry in &inventory.entries {
        if !dry_run {
            // A shim that died mid-rewrite leaves its complete temp file beside forked.pid. Its
            // writer is judged by the rule siblings' shims are: never from where host pids are
            // not seen, which would take a live shim's rewrite for a dead one's.
            if let Some(path) = &entry.forked_pid_path {
                checkpoint::remove_stale_temp_files(path, |writer| process_gone(writer, visible));
            }
        }
        let reason = match inventory::verdict(entry) {
            Verdict::Collect(reason) => reason,
            Verdict::Keep => continue,
            Verdict::CannotJudge(why) => {
                kept.push(Kept {
                    name: entry.name.clone(),
                    cannot_judge: why,
                });
                continue;
            }
        };
        let Some((action, error)) = act(engine, &inventory, entry, dry_run).await else {
            continue;
        };
        actions.push(Action {
            name: entry.name.clone(),
            container_id: entry.container_id.clone(),
            reason,
            action,
            error,
        });
    }
    report(&actions, &kept, &inventory, json)?;
    Ok(if actions.iter().any(|a| a.action == Done::Failed) {
        PROBLEM_FOUND
    } else {
        SUCCESS
    })
}

/// Removes `entry` (or says it would), judged again right before: a relaunch may have adopted
/// it, its shim may have checkpointed it, since the listing. `None`: gone meanwhile, or no
/// longer to be collected.
async fn act(
    engine: &Engine,
    inventory: &Inventory,
    entry: &SiblingEntry,
    dry_run: bool,
) -> Option<(Done, Option<String>)> {
    if dry_run {
        return Some((Done::WouldRemove, None));
    }
    match inventory.recheck(engine, entry).await {
        Ok(Some(now)) if inventory::collect_reason(&now).is_some() => {
            match engine.remove(&entry.docker_id).await {
                Ok(()) => Some((Done::Removed, None)),
                Err(e) => Some((Done::Failed, Some(format!("{e:#}")))),
            }
        }
        Ok(_) => None,
        Err(e) => Some((Done::Failed, Some(format!("{e:#}")))),
    }
}

/// What a pass did, and what it kept because it could not judge it. `--json`: the actions
/// alone, as before (a consumer of the list sees only removals); the siblings it could not
/// judge go to the log, on stderr.
fn report(
    actions: &[Action],
    kept: &[Kept],
    inventory: &Inventory,
    json: bool,
) -> Result<(), ShimError> {
    if json {
        for k in kept {
            tracing::warn!(
                container = %super::printable(&k.name),
                why = %super::printable(&k.cannot_judge.describe()),
                "kept: cannot judge"
            );
        }
        return super::print_json(&actions);
    }
    for a in actions {
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
    for k in kept {
        super::print(format!(
            "kept {}: cannot judge: {}",
            super::printable(&k.name),
            super::printable(&k.cannot_judge.describe())
        ))?;
    }
    super::print(format!(
        "{} sibling(s) collected, {} kept ({} of them not judged), {} labelled as siblings but \
         not ones left alone",
        actions.len(),
        inventory.entries.len() - actions.len(),
        kept.len(),
        inventory.foreign.len()
    ))
}
