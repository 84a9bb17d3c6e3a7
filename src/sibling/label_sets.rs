//! The label sets siblings have carried, release by release, and how `gc` reads each: what a
//! release wrote is read as that release meant it, and what this release cannot read (a set or
//! an init protocol newer than it knows, a value it does not know) is never judged. A sibling
//! may outlive many upgrades of the shim, so every set that made siblings still running is here.

use std::collections::HashMap;

use serde::Serialize;

use crate::sibling::labels::{
    LABEL_AGENT_ID, LABEL_CHECKPOINT, LABEL_CONTAINER_ID, LABEL_EXECUTOR, LABEL_EXECUTOR_ID,
    LABEL_FORKED_PID, LABEL_FORKED_PID_HOST, LABEL_FRAMEWORK_ID, LABEL_INIT_PROTOCOL,
    LABEL_LABEL_SET, LABEL_MANAGED, LABEL_SANDBOX, LABEL_SHIM, LABEL_WORK_DIR, LABEL_WORK_DIR_HOST,
};
use crate::sibling::protocol::PROTOCOL;

/// One label set: the keys a range of releases wrote on every sibling.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LabelSet {
    /// Written as [`LABEL_LABEL_SET`] from set 3 on; the earlier sets are told by their keys.
    pub version: u32,
    /// The commits that wrote it, first to last.
    pub releases: &'static str,
    /// The keys it added to the set before it (or, for set 3, changed).
    pub added: &'static [&'static str],
    /// Its siblings say whether the agent checkpoints their run ([`LABEL_CHECKPOINT`]). Where
    /// they do not, a run without a meta run directory may be one that does not checkpoint, and
    /// its absence proves nothing.
    pub records_checkpointing: bool,
}

/// Every label set, oldest first. `gc` reads each as below (see [`read`]):
/// - 0, before the init: the executor was the sibling's first process. Such a container is no
///   sibling to [`crate::sibling::identity::judge`] (its command is not the init's) and is never
///   judged.
/// - 1, the init: judged, but it does not say whether its run checkpoints.
/// - 2, `checkpoint`: says so.
/// - 3, `label-set`: names its set; `forked-pid` and `forked-pid-host` only on a run that
///   checkpoints (nothing is there otherwise), so that the `gc` of sets 0 to 2, which takes a
///   missing meta run directory for a finished run, finds no path to judge a run that does not
///   checkpoint by, and keeps its sibling.
pub(crate) const LABEL_SETS: [LabelSet; 4] = [
    LabelSet {
        version: 0,
        releases: "ab26131 to d1d8dcf",
        added: &[
            LABEL_MANAGED,
            LABEL_AGENT_ID,
            LABEL_FRAMEWORK_ID,
            LABEL_EXECUTOR_ID,
            LABEL_CONTAINER_ID,
            LABEL_SANDBOX,
            LABEL_FORKED_PID,
            LABEL_WORK_DIR,
            LABEL_SHIM,
        ],
        records_checkpointing: false,
    },
    LabelSet {
        version: 1,
        releases: "aa698ca to 7bd4361",
        added: &[
            LABEL_EXECUTOR,
            LABEL_INIT_PROTOCOL,
            LABEL_WORK_DIR_HOST,
            LABEL_FORKED_PID_HOST,
        ],
        records_checkpointing: false,
    },
    LabelSet {
        version: 2,
        releases: "bd19312 to 0a72947",
        added: &[LABEL_CHECKPOINT],
        records_checkpointing: true,
    },
    LabelSet {
        version: 3,
        releases: "this release",
        added: &[LABEL_LABEL_SET],
        records_checkpointing: true,
    },
];

/// The set this release writes, the newest it reads.
pub(crate) const CURRENT: &LabelSet = &LABEL_SETS[LABEL_SETS.len() - 1];

/// Why a sibling's labels are not read, and the sibling never judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Unreadable {
    /// A label set newer than this release knows: a later release made it.
    NewerSet { version: u32 },
    /// An init protocol newer than this release speaks.
    NewerProtocol { version: u32 },
    /// A label this release reads holds a value it does not know.
    UnknownValue { label: &'static str, value: String },
    /// A label its set always carries is missing.
    Missing { label: &'static str },
}

impl Unreadable {
    /// What `gc` says of it (`value` as anyone may have set it: the caller escapes it).
    pub(crate) fn describe(&self) -> String {
        match self {
            Unreadable::NewerSet { version } => format!(
                "its labels are of set {version}, newer than this release's {}: run a gc at \
                 least as new as the shim that made it",
                CURRENT.version
            ),
            Unreadable::NewerProtocol { version } => format!(
                "its init speaks protocol {version}, newer than this release's {PROTOCOL}: run \
                 a gc at least as new as the shim that made it"
            ),
            Unreadable::UnknownValue { label, value } => {
                format!("its label {label} holds {value:?}, which this release does not know")
            }
            Unreadable::Missing { label } => format!("its label {label} is missing"),
        }
    }
}

/// What a sibling's labels say, read as the release that wrote them meant them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reading {
    pub set: u32,
    /// Whether the agent checkpoints its run; `None`: its set does not say.
    pub checkpointing: Option<bool>,
}

/// Reads `labels` by the set they belong to: [`LABEL_LABEL_SET`] where present, else the keys
/// that only some sets wrote.
pub(crate) fn read(labels: &HashMap<String, String>) -> Result<Reading, Unreadable> {
    if let Some(version) = number(labels, LABEL_INIT_PROTOCOL)? {
        if version > PROTOCOL {
            return Err(Unreadable::NewerProtocol { version });
        }
    }
    let set = match number(labels, LABEL_LABEL_SET)? {
        Some(version) if version > CURRENT.version => return Err(Unreadable::NewerSet { version }),
        // No release wrote the label below set 3.
        Some(version) if version < 3 => return Err(unknown(labels, LABEL_LABEL_SET)),
        Some(version) => version,
        None if labels.contains_key(LABEL_CHECKPOINT) => 2,
        None if labels.contains_key(LABEL_INIT_PROTOCOL) => 1,
        None => 0,
    };
    let checkpointing = match labels.get(LABEL_CHECKPOINT).map(String::as_str) {
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(unknown(labels, LABEL_CHECKPOINT)),
        None if LABEL_SETS[set as usize].records_checkpointing => {
            return Err(Unreadable::Missing {
                label: LABEL_CHECKPOINT,
            })
        }
        None => None,
    };
    Ok(Reading { set, checkpointing })
}

/// The decimal value of `label`, if present.
fn number(
    labels: &HashMap<String, String>,
    label: &'static str,
) -> Result<Option<u32>, Unreadable> {
    match labels.get(label) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| unknown(labels, label)),
    }
}

fn unknown(labels: &HashMap<String, String>, label: &'static str) -> Unreadable {
    Unreadable::UnknownValue {
        label,
        value: labels.get(label).cloned().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_1_labels() -> HashMap<String, String> {
        crate::test_support::set_1_labels("/var/lib/mesos", "50:500")
    }

    #[test]
    fn each_set_is_read_as_its_release_meant_it() {
        let set_1 = set_1_labels();
        assert_eq!(
            read(&set_1),
            Ok(Reading {
                set: 1,
                checkpointing: None
            }),
            "set 1 does not say whether its run checkpoints"
        );
        let mut set_2 = set_1.clone();
        set_2.insert(LABEL_CHECKPOINT.into(), "false".into());
        assert_eq!(
            read(&set_2).map(|r| (r.set, r.checkpointing)),
            Ok((2, Some(false)))
        );
        let mut set_3 = set_2.clone();
        set_3.insert(LABEL_LABEL_SET.into(), "3".into());
        set_3.insert(LABEL_CHECKPOINT.into(), "true".into());
        assert_eq!(
            read(&set_3).map(|r| (r.set, r.checkpointing)),
            Ok((3, Some(true)))
        );
        let mut set_0 = set_1.clone();
        for key in LABEL_SETS[1].added {
            set_0.remove(*key);
        }
        assert_eq!(read(&set_0).map(|r| r.set), Ok(0));
    }

    #[test]
    fn labels_newer_or_unknown_are_never_read() {
        let with = |pairs: &[(&str, &str)]| {
            let mut labels = set_1_labels();
            for (k, v) in pairs {
                labels.insert(k.to_string(), v.to_string());
            }
            read(&labels)
        };
        assert_eq!(
            with(&[(LABEL_LABEL_SET, "4"), (LABEL_CHECKPOINT, "true")]),
            Err(Unreadable::NewerSet { version: 4 })
        );
        assert_eq!(
            with(&[(LABEL_INIT_PROTOCOL, "2")]),
            Err(Unreadable::NewerProtocol { version: 2 })
        );
        for (label, value) in [
            (LABEL_CHECKPOINT, "maybe"),
            (LABEL_LABEL_SET, "three"),
            (LABEL_LABEL_SET, "2"),
            (LABEL_INIT_PROTOCOL, "-1"),
        ] {
            assert!(
                matches!(
                    with(&[(label, value)]),
                    Err(Unreadable::UnknownValue { .. })
                ),
                "{label}={value}"
            );
        }
        assert_eq!(
            with(&[(LABEL_LABEL_SET, "3")]),
            Err(Unreadable::Missing {
                label: LABEL_CHECKPOINT
            }),
            "set 3 always says whether its run checkpoints"
        );
    }

    #[test]
    fn the_table_is_in_order_and_this_release_writes_the_last_set() {
        for (i, set) in LABEL_SETS.iter().enumerate() {
            assert_eq!(set.version as usize, i);
        }
        assert_eq!(CURRENT.version, 3);
    }
}
