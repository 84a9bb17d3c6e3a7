//! `ps`: the sibling executor containers on this Docker host and whether recovery would find them,
//! then the containers labelled as siblings that are not (see [`identity::judge`]). Every value
//! printed as text goes through [`super::printable`]: labels are anyone's to set. Mesos's IDs are
//! printed whole, each column as wide as its longest value; Docker's container ID as `docker ps`
//! shortens it, whole with `--wide`.
//!
//! [`identity::judge`]: crate::sibling::identity::judge

use std::path::Path;

use super::printable;
use crate::error::{Classify, Failure, ShimError};
use crate::sibling::inventory::{self, ForeignContainer, ForkedPid, SiblingEntry};

pub fn main(
    config: Option<&Path>,
    labels: &[String],
    json: bool,
    wide: bool,
) -> Result<u8, ShimError> {
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
        return Ok(crate::error::SUCCESS);
    }
    let rows = inventory.entries.iter().map(|e| sibling_row(e, wide));
    for line in table(&SIBLING_COLUMNS, rows) {
        super::print(line)?;
    }
    print_foreign(&inventory.foreign, wide)?;
    Ok(crate::error::SUCCESS)
}

/// Whose ID each is: the Mesos container's (the sibling's name is `executor-mesos-` and it), the
/// executor's and framework's, then the Docker container's.
const SIBLING_COLUMNS: [&str; 8] = [
    "MESOS CONTAINER",
    "EXECUTOR",
    "FRAMEWORK",
    "STATE",
    "HOST PID",
    "FORKED.PID",
    "RUN COMPLETED",
    "DOCKER CONTAINER",
];

fn sibling_row(e: &SiblingEntry, wide: bool) -> Vec<String> {
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
    vec![
        printable(&e.container_id).into_owned(),
        printable(&e.executor_id).into_owned(),
        printable(&e.framework_id).into_owned(),
        printable(&inventory::state_in_words(e)).into_owned(),
        pid,
        forked,
        completed.into(),
        docker_id(&e.docker_id, wide),
    ]
}

/// A Docker container ID as `docker ps` shows it (its first 12 characters, which every docker
/// command takes), or whole.
fn docker_id(id: &str, wide: bool) -> String {
    let shown = if wide { id } else { id.get(..12).unwrap_or(id) };
    printable(shown).into_owned()
}

/// Lines of a table: each column as wide as its widest cell, two spaces between columns, the
/// last one not padded.
fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Vec<String> {
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    cells.extend(rows);
    let mut widths = vec![0; header.len()];
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    cells
        .iter()
        .map(|row| {
            let padded: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            padded.join("  ").trim_end().to_string()
        })
        .collect()
}

/// The containers labelled as siblings that are not: what their labels claim, and why they are
/// none. Only when there are some, so that the usual report is unchanged.
fn print_foreign(foreign: &[ForeignContainer], wide: bool) -> Result<(), ShimError> {
    if foreign.is_empty() {
        return Ok(());
    }
    super::print("")?;
    super::print(
        "NOT SIBLINGS: labelled as the shim's, not made by it; never read from or removed",
    )?;
    let rows = foreign.iter().map(|f| {
        vec![
            printable(&f.name).into_owned(),
            printable(&f.container_id).into_owned(),
            printable(&f.executor_id).into_owned(),
            printable(&f.state).into_owned(),
            docker_id(&f.docker_id, wide),
            f.why.describe().to_string(),
        ]
    });
    let header = [
        "NAME",
        "MESOS CONTAINER (LABEL)",
        "EXECUTOR (LABEL)",
        "DOCKER STATE",
        "DOCKER CONTAINER",
        "WHY",
    ];
    for line in table(&header, rows) {
        super::print(line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No value is cut: each column is as wide as its widest cell, and the columns line up.
    #[test]
    fn columns_fit_their_longest_value() {
        let framework = "0b1a9c2e-5d3f-4e8a-9b7c-6d5e4f3a2b1c-0042";
        let rows = vec![
            vec!["c1".to_string(), framework.to_string(), "x".to_string()],
            vec!["container-2".to_string(), "f".to_string(), "y".to_string()],
        ];
        let lines = table(&["MESOS CONTAINER", "FRAMEWORK", "STATE"], rows.into_iter());
        assert!(lines[1].contains(framework), "{lines:?}");
        let at = |line: &str| line.find(['x', 'y']).or(line.find("STATE")).unwrap();
        assert_eq!(at(&lines[0]), at(&lines[1]));
        assert_eq!(at(&lines[1]), at(&lines[2]));
        assert_eq!(lines[1], format!("c1               {framework}  x"));
        let id = "4f".repeat(32);
        assert_eq!(docker_id(&id, false).len(), 12);
        assert_eq!(docker_id(&id, true), id);
    }
}
