//! `ps`: the sibling executor containers on this Docker host and whether recovery would find them,
//! then the containers labelled as siblings that are not (see [`identity::judge`]). Every value
//! printed as text goes through [`super::printable`]: labels are anyone's to set.
//!
//! [`identity::judge`]: crate::sibling::identity::judge

use std::path::Path;

use super::printable;
use crate::error::{Classify, Failure, ShimError};
use crate::sibling::inventory::{self, ForeignContainer, ForkedPid, SiblingEntry};

pub fn main(config: Option<&Path>, labels: &[String], json: bool) -> Result<u8, ShimError> {
    let settings = super::operator_settings(config)?.settings;
    let inventory = crate::runtime::current_thread()?.block_on(async {
        let engine = super::connect(&settings).await?;
        inventory::list(&engine, labels, &[])
            .await
            .classify(Failure::Unavailable)
    })?;
    super::say_if_pids_unseen(&inventory.host_pids, json)?;
    if json {
        // The siblings alone, as before: a consumer of the list never mistakes a foreign
        // container for one.
        super::print_json(&inventory.entries)?;
        return Ok(0);
    }
    super::print(format!(
        "{:<40} {:<30} {:<24} {:<10} {:>8}  {:<16} COMPLETED",
        "CONTAINER ID", "EXECUTOR", "FRAMEWORK", "STATE", "HOST PID", "FORKED.PID"
    ))?;
    for e in &inventory.entries {
        super::print(sibling_line(e))?;
    }
    print_foreign(&inventory.foreign)
}

fn sibling_line(e: &SiblingEntry) -> String {
    let forked = match &e.forked_pid {
        ForkedPid::Matches => "matches".to_string(),
        ForkedPid::Differs { pid, .. } => format!("differs ({pid})"),
        ForkedPid::Absent => "absent".into(),
        ForkedPid::Unparsable { .. } => "unparsable".into(),
        ForkedPid::Unknown => "unknown".into(),
        ForkedPid::NotRunning => "-".into(),
    };
    let completed = match e.completed {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    };
    let pid = e
        .host_pid
        .map(|p| p.to_string())
        .unwrap_or_else(|| "-".into());
    format!(
        "{:<40} {:<30} {:<24} {:<10} {:>8}  {:<16} {completed}",
        printable(&e.container_id),
        printable(&e.executor_id),
        printable(&e.framework_id),
        printable(&e.state),
        pid,
        forked
    )
}

/// The containers labelled as siblings that are not: what their labels claim, and why they are
/// none. Only when there are some, so that the usual report is unchanged.
fn print_foreign(foreign: &[ForeignContainer]) -> Result<u8, ShimError> {
    if foreign.is_empty() {
        return Ok(0);
    }
    super::print("")?;
    super::print(
        "NOT SIBLINGS: labelled as the shim's, not made by it; never read from or removed",
    )?;
    super::print(format!(
        "{:<40} {:<40} {:<30} {:<10} WHY",
        "NAME", "CONTAINER ID (LABEL)", "EXECUTOR (LABEL)", "STATE"
    ))?;
    for f in foreign {
        super::print(format!(
            "{:<40} {:<40} {:<30} {:<10} {}",
            printable(&f.name),
            printable(&f.container_id),
            printable(&f.executor_id),
            printable(&f.state),
            f.why.describe()
        ))?;
    }
    Ok(0)
}
