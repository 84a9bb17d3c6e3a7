//! `ps`: the sibling executor containers on this Docker host and whether recovery would find them.

use std::path::Path;

use crate::error::{Classify, Failure, ShimError};
use crate::sibling::inventory::{self, ForkedPid};

pub fn main(config: Option<&Path>, labels: &[String], json: bool) -> Result<u8, ShimError> {
    let settings = super::operator_settings(config)?.settings;
    let entries = super::runtime()?
        .block_on(async {
            let engine = super::connect(&settings).await?;
            inventory::list(&engine, labels, &[])
                .await
                .classify(Failure::Unavailable)
        })?
        .entries;
    if json {
        super::print_json(&entries)?;
        return Ok(0);
    }
    super::print(format!(
        "{:<40} {:<30} {:<24} {:<10} {:>8}  {:<16} COMPLETED",
        "CONTAINER ID", "EXECUTOR", "FRAMEWORK", "STATE", "HOST PID", "FORKED.PID"
    ))?;
    for e in &entries {
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
        super::print(format!(
            "{:<40} {:<30} {:<24} {:<10} {:>8}  {:<16} {completed}",
            e.container_id, e.executor_id, e.framework_id, e.state, pid, forked
        ))?;
    }
    Ok(0)
}
