//! Where a run lives on disk, derived from `MESOS_DIRECTORY`.
//!
//! The agent gives the executor no container-ID variable: everything the shim needs is encoded in the
//! sandbox path `<work_dir>/slaves/<SID>/frameworks/<FID>/executors/<EID>/runs/<CID>`, and the
//! checkpoint directory mirrors it under `<work_dir>/meta/`.

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;

/// Written in a run's meta directory once the agent considers the run completed.
pub(crate) const SENTINEL_FILE: &str = "executor.sentinel";

/// Written in the sandbox by the sibling's init when the executor exits: its exit status, which
/// the shim reads without asking Docker (see [`crate::sibling::protocol::ExitRecord`]). In the
/// sandbox because that is the one directory of the run that always exists (the meta directory
/// only with checkpointing) and that the sibling is given.
pub(crate) const EXIT_RECORD_FILE: &str = ".mesos-executor-shim.exit";

/// Mesos's own limit on an ID's length (`NAME_MAX`, `src/common/validation.cpp`).
const MAX_ID_LEN: usize = 255;

/// A run of an executor, as laid out by the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLayout {
    pub work_dir: PathBuf,
    pub agent_id: String,
    pub framework_id: String,
    pub executor_id: String,
    pub container_id: String,
    /// `MESOS_DIRECTORY`, normalised.
    pub sandbox: PathBuf,
}

/// Why `MESOS_DIRECTORY` (or an ID variable beside it) cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    NotAbsolute(String),
    NotUtf8,
    BadComponent(String),
    WrongShape(String),
    InvalidId {
        what: &'static str,
        id: String,
        why: String,
    },
    Mismatch {
        variable: &'static str,
        env: String,
        path: String,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHAPE: &str = "<work_dir>/slaves/<agent>/frameworks/<framework>/executors/<executor>/runs/<container>";
        match self {
            LayoutError::NotAbsolute(p) => write!(
                f,
                "MESOS_DIRECTORY={p:?} is not an absolute path; the agent always passes the absolute sandbox path \
                 ({SHAPE}): run the shim from a Mesos agent or set MESOS_DIRECTORY accordingly"
            ),
            LayoutError::NotUtf8 => write!(
                f,
                "MESOS_DIRECTORY is not valid UTF-8; Mesos sandbox paths are UTF-8: check the agent's --work_dir"
            ),
            LayoutError::BadComponent(p) => write!(
                f,
                "MESOS_DIRECTORY={p:?} contains an empty, '.' or '..' component; the shim only accepts the \
                 normalised sandbox path the agent passes ({SHAPE})"
            ),
            LayoutError::WrongShape(p) => write!(
                f,
                "MESOS_DIRECTORY={p:?} does not have the shape of a Mesos sandbox ({SHAPE}); \
                 the shim must be started by a Mesos agent as its mesos-executor"
            ),
            LayoutError::InvalidId { what, id, why } => write!(
                f,
                "the {what} {id:?} in MESOS_DIRECTORY is not a valid Mesos ID ({why}); refusing to create anything for it"
            ),
            LayoutError::Mismatch { variable, env, path } => write!(
                f,
                "{variable}={env:?} disagrees with MESOS_DIRECTORY, which names {path:?}; \
                 the environment does not come from one agent launch: fix whichever the caller set by hand"
            ),
        }
    }
}

impl std::error::Error for LayoutError {}

/// The ID variables the agent sets beside `MESOS_DIRECTORY`, cross-checked against it when present.
#[derive(Debug, Default, Clone)]
pub struct IdVariables {
    pub agent_id: Option<String>,
    /// `MESOS_AGENT_ID`, set by newer agents next to `MESOS_SLAVE_ID`.
    pub agent_id_new: Option<String>,
    pub framework_id: Option<String>,
    pub executor_id: Option<String>,
}

impl RunLayout {
    /// Parses and validates a sandbox path, then cross-checks the ID variables.
    pub fn from_sandbox(sandbox: &OsStr, ids: &IdVariables) -> Result<Self, LayoutError> {
        let text = sandbox.to_str().ok_or(LayoutError::NotUtf8)?;
        // Strip one trailing slash (a shell user's habit), but no other normalisation: `Path`
        // silently drops `.` and doubled slashes, which would hide a malformed path.
        let trimmed = if text.len() > 1 {
            text.strip_suffix('/').unwrap_or(text)
        } else {
            text
        };
        if !trimmed.starts_with('/') {
            return Err(LayoutError::NotAbsolute(text.to_string()));
        }
        let parts: Vec<&str> = trimmed[1..].split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            return Err(LayoutError::BadComponent(text.to_string()));
        }
        // ... / slaves / SID / frameworks / FID / executors / EID / runs / CID
        let n = parts.len();
        if n < 8
            || parts[n - 8] != "slaves"
            || parts[n - 6] != "frameworks"
            || parts[n - 4] != "executors"
            || parts[n - 2] != "runs"
        {
            return Err(LayoutError::WrongShape(text.to_string()));
        }
        let (agent_id, framework_id, executor_id, container_id) =
            (parts[n - 7], parts[n - 5], parts[n - 3], parts[n - 1]);
        validate_id("agent ID", agent_id)?;
        validate_id("framework ID", framework_id)?;
        validate_id("executor ID", executor_id)?;
        validate_container_id(container_id)?;
        if container_id == "latest" {
            // `runs/latest` is the agent's symlink to the newest run, never a run of its own.
            return Err(LayoutError::InvalidId {
                what: "container ID",
                id: container_id.to_string(),
                why: "'latest' is the agent's symlink to the newest run, not a run".into(),
            });
        }

        let checks = [
            ("MESOS_SLAVE_ID", &ids.agent_id, agent_id),
            ("MESOS_AGENT_ID", &ids.agent_id_new, agent_id),
            ("MESOS_FRAMEWORK_ID", &ids.framework_id, framework_id),
            ("MESOS_EXECUTOR_ID", &ids.executor_id, executor_id),
        ];
        for (variable, env, path) in checks {
            if let Some(env) = env {
                if env != path {
                    return Err(LayoutError::Mismatch {
                        variable,
                        env: env.clone(),
                        path: path.to_string(),
                    });
                }
            }
        }

        let work_dir = PathBuf::from(format!("/{}", parts[..n - 8].join("/")));
        Ok(RunLayout {
            work_dir,
            agent_id: agent_id.to_string(),
            framework_id: framework_id.to_string(),
            executor_id: executor_id.to_string(),
            container_id: container_id.to_string(),
            sandbox: PathBuf::from(trimmed),
        })
    }

    /// The run that these IDs name under `work_dir`, checked as strictly as a sandbox path the
    /// agent passes: the work_dir absolute and normalised, every ID valid by Mesos's rules and
    /// the container ID a Docker name. What `ps` and `gc` accept of a container's labels.
    pub(crate) fn from_ids(
        work_dir: &str,
        agent_id: &str,
        framework_id: &str,
        executor_id: &str,
        container_id: &str,
    ) -> Result<Self, LayoutError> {
        // Joined as text, then parsed as the agent's sandbox path: an ID holding a `/` shifts the
        // shape or disagrees with the ID it was given, and both are refused.
        if !work_dir.starts_with('/') {
            return Err(LayoutError::NotAbsolute(work_dir.to_string()));
        }
        let base = if work_dir == "/" { "" } else { work_dir };
        let sandbox = format!(
            "{base}/slaves/{agent_id}/frameworks/{framework_id}/executors/{executor_id}/runs/{container_id}"
        );
        let ids = IdVariables {
            agent_id: Some(agent_id.to_string()),
            agent_id_new: None,
            framework_id: Some(framework_id.to_string()),
            executor_id: Some(executor_id.to_string()),
        };
        let run = RunLayout::from_sandbox(OsStr::new(&sandbox), &ids)?;
        if run.container_id != container_id || run.sandbox.as_os_str() != sandbox.as_str() {
            return Err(LayoutError::WrongShape(sandbox));
        }
        Ok(run)
    }

    /// `<work_dir>/meta/slaves/<SID>/frameworks/<FID>/executors/<EID>/runs/<CID>`.
    pub(crate) fn meta_run_dir(&self) -> PathBuf {
        self.work_dir
            .join("meta/slaves")
            .join(&self.agent_id)
            .join("frameworks")
            .join(&self.framework_id)
            .join("executors")
            .join(&self.executor_id)
            .join("runs")
            .join(&self.container_id)
    }

    /// The agent's checkpoint of the pid it forked: what a restarted agent probes.
    pub fn forked_pid_path(&self) -> PathBuf {
        self.meta_run_dir().join("pids/forked.pid")
    }

    /// Where the sibling's init records the executor's exit status.
    pub(crate) fn exit_record_path(&self) -> PathBuf {
        self.sandbox.join(EXIT_RECORD_FILE)
    }

    /// The name of the sibling container. Never starts with `mesos-`: the docker containerizer
    /// kills containers with that prefix that it does not know when it recovers.
    pub fn sibling_name(&self) -> String {
        sibling_name(&self.container_id)
    }
}

/// `executor-mesos-<CID>`.
pub(crate) fn sibling_name(container_id: &str) -> String {
    format!("executor-mesos-{container_id}")
}

/// Mesos's rule for every ID (`validateID` in `src/common/validation.cpp`).
pub(crate) fn validate_id(what: &'static str, id: &str) -> Result<(), LayoutError> {
    let why = if id.is_empty() {
        Some("it is empty".to_string())
    } else if id.len() > MAX_ID_LEN {
        Some(format!("it is longer than {MAX_ID_LEN} bytes"))
    } else if id == "." || id == ".." {
        Some("'.' and '..' are not IDs".to_string())
    } else if id.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        Some("it contains a control character, '/' or '\\'".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(LayoutError::InvalidId {
            what,
            id: id.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

/// A container ID also names a Docker container, whose names allow only `[A-Za-z0-9_.-]`.
/// Top-level container IDs are UUIDs, so this refuses nothing the agent generates.
pub(crate) fn validate_container_id(id: &str) -> Result<(), LayoutError> {
    validate_id("container ID", id)?;
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(LayoutError::InvalidId {
            what: "container ID",
            id: id.to_string(),
            why: "a Docker container name allows only letters, digits, '_', '.' and '-'".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Component, Path};

    /// True when `path` is `dir` or below it, judged on normal components only.
    fn is_within(path: &Path, dir: &Path) -> bool {
        path.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
            && path.starts_with(dir)
    }

    const SANDBOX: &str =
        "/var/lib/mesos/slaves/S0/frameworks/F-1/executors/app.1234-abcd/runs/0f1e2d3c-aaaa";

    fn parse(path: &str) -> Result<RunLayout, LayoutError> {
        RunLayout::from_sandbox(OsStr::new(path), &IdVariables::default())
    }

    #[test]
    fn parses_a_sandbox_into_its_ids() {
        let run = parse(SANDBOX).unwrap();
        assert_eq!(run.work_dir, PathBuf::from("/var/lib/mesos"));
        assert_eq!(run.agent_id, "S0");
        assert_eq!(run.framework_id, "F-1");
        assert_eq!(run.executor_id, "app.1234-abcd");
        assert_eq!(run.container_id, "0f1e2d3c-aaaa");
        assert_eq!(
            run.forked_pid_path(),
            PathBuf::from(
                "/var/lib/mesos/meta/slaves/S0/frameworks/F-1/executors/app.1234-abcd/runs/0f1e2d3c-aaaa/pids/forked.pid"
            )
        );
        assert_eq!(run.sibling_name(), "executor-mesos-0f1e2d3c-aaaa");
    }

    #[test]
    fn a_trailing_slash_is_tolerated_and_a_root_work_dir_is_kept() {
        assert_eq!(
            parse(&format!("{SANDBOX}/")).unwrap().sandbox,
            PathBuf::from(SANDBOX)
        );
        let run = parse("/slaves/S/frameworks/F/executors/E/runs/C").unwrap();
        assert_eq!(run.work_dir, PathBuf::from("/"));
        assert_eq!(
            run.forked_pid_path(),
            PathBuf::from("/meta/slaves/S/frameworks/F/executors/E/runs/C/pids/forked.pid")
        );
    }

    #[test]
    fn refuses_relative_dotted_and_empty_components() {
        assert!(matches!(
            parse("var/lib/mesos/slaves/S/frameworks/F/executors/E/runs/C"),
            Err(LayoutError::NotAbsolute(_))
        ));
        assert!(matches!(parse(""), Err(LayoutError::NotAbsolute(_))));
        assert!(matches!(
            parse("/w/../slaves/S/frameworks/F/executors/E/runs/C"),
            Err(LayoutError::BadComponent(_))
        ));
        assert!(matches!(
            parse("/w/slaves/S/frameworks/F/executors/../runs/C"),
            Err(LayoutError::BadComponent(_))
        ));
        assert!(matches!(
            parse("/w//slaves/S/frameworks/F/executors/E/runs/C"),
            Err(LayoutError::BadComponent(_))
        ));
        assert!(matches!(
            parse("/w/./slaves/S/frameworks/F/executors/E/runs/C"),
            Err(LayoutError::BadComponent(_))
        ));
    }

    #[test]
    fn refuses_paths_of_another_shape() {
        assert!(parse("/").is_err());
        for bad in [
            "/tmp",
            "/w/slaves/S/frameworks/F/executors/E/runs",
            "/w/slaves/S/frameworks/F/executors/E/run/C",
            "/w/agents/S/frameworks/F/executors/E/runs/C",
            "/w/slaves/S/frameworks/F/executors/E/runs/C/extra",
        ] {
            assert!(
                matches!(parse(bad), Err(LayoutError::WrongShape(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_ids_mesos_would_refuse_and_container_ids_docker_cannot_name() {
        assert!(matches!(
            parse("/w/slaves/S/frameworks/F/executors/a\tb/runs/C"),
            Err(LayoutError::InvalidId { .. })
        ));
        assert!(matches!(
            parse("/w/slaves/S/frameworks/F/executors/E/runs/c d"),
            Err(LayoutError::InvalidId { .. })
        ));
        assert!(matches!(
            parse("/w/slaves/S/frameworks/F/executors/E/runs/latest"),
            Err(LayoutError::InvalidId { .. })
        ));
        let long = "x".repeat(256);
        assert!(matches!(
            parse(&format!("/w/slaves/S/frameworks/{long}/executors/E/runs/C")),
            Err(LayoutError::InvalidId { .. })
        ));
        // Executor IDs may hold characters a container name may not: they only go into labels.
        assert_eq!(
            parse("/w/slaves/S/frameworks/F/executors/my app:1/runs/C")
                .unwrap()
                .executor_id,
            "my app:1"
        );
    }

    #[test]
    fn cross_checks_the_id_variables() {
        let ids = IdVariables {
            agent_id: Some("S0".into()),
            agent_id_new: Some("S0".into()),
            framework_id: Some("F-1".into()),
            executor_id: Some("app.1234-abcd".into()),
        };
        assert!(RunLayout::from_sandbox(OsStr::new(SANDBOX), &ids).is_ok());
        let wrong = IdVariables {
            framework_id: Some("F-2".into()),
            ..ids.clone()
        };
        let err = RunLayout::from_sandbox(OsStr::new(SANDBOX), &wrong).unwrap_err();
        assert!(matches!(
            err,
            LayoutError::Mismatch {
                variable: "MESOS_FRAMEWORK_ID",
                ..
            }
        ));
        assert!(err.to_string().contains("MESOS_FRAMEWORK_ID=\"F-2\""));
        let wrong = IdVariables {
            agent_id_new: Some("S9".into()),
            ..ids
        };
        assert!(matches!(
            RunLayout::from_sandbox(OsStr::new(SANDBOX), &wrong),
            Err(LayoutError::Mismatch {
                variable: "MESOS_AGENT_ID",
                ..
            })
        ));
    }

    #[test]
    fn a_run_is_made_from_ids_only_when_the_agent_could_have_laid_it_out() {
        let run = RunLayout::from_ids("/var/lib/mesos", "S0", "F-1", "app.1", "C-1").unwrap();
        assert_eq!(
            run.forked_pid_path(),
            PathBuf::from(
                "/var/lib/mesos/meta/slaves/S0/frameworks/F-1/executors/app.1/runs/C-1/pids/forked.pid"
            )
        );
        let root = RunLayout::from_ids("/", "S", "F", "E", "C").unwrap();
        assert_eq!(root.work_dir, PathBuf::from("/"));
        assert_eq!(
            root.sandbox,
            PathBuf::from("/slaves/S/frameworks/F/executors/E/runs/C")
        );
        for (work_dir, ids) in [
            ("relative", ["S", "F", "E", "C"]),
            ("/w/../etc", ["S", "F", "E", "C"]),
            ("/w//x", ["S", "F", "E", "C"]),
            ("/w/", ["S", "F", "E", "C"]),
            ("", ["S", "F", "E", "C"]),
            ("/w", ["S/x", "F", "E", "C"]),
            ("/w", ["S", "F", "E/runs/C2", "C"]),
            ("/w", ["S", "F", "E", "C/x"]),
            ("/w", ["S", "F", "E", "latest"]),
            ("/w", ["S", "F", "a\u{1b}[31m", "C"]),
            ("/w", ["S", "..", "E", "C"]),
            ("/w", ["", "F", "E", "C"]),
            ("/w", ["S", "F", "E", "c d"]),
        ] {
            let [a, f, e, c] = ids;
            assert!(
                RunLayout::from_ids(work_dir, a, f, e, c).is_err(),
                "{work_dir:?} {ids:?}"
            );
        }
    }

    #[test]
    fn is_within_refuses_escapes() {
        assert!(is_within(Path::new("/a/b/c"), Path::new("/a/b")));
        assert!(!is_within(Path::new("/a/b/../c"), Path::new("/a/b")));
        assert!(!is_within(Path::new("/a/bc"), Path::new("/a/b")));
    }

    /// No sandbox path makes the parser panic, and whatever it accepts has valid IDs, a Docker
    /// name made of allowed characters only, and a checkpoint inside the run's meta directory.
    mod property {
        use super::*;
        use proptest::prelude::*;

        const SEGMENTS: &[&str] = &[
            "slaves",
            "frameworks",
            "executors",
            "runs",
            "meta",
            "latest",
            "..",
            ".",
            "",
            "S0",
            "F-1",
            "app.1",
            "c0ffee-1",
            "a b",
            "tab\there",
            "nul\0x",
            "back\\slash",
            "x:y",
            "ü",
            "-",
            "_",
            "run$",
            "*",
        ];

        fn segment() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => prop::sample::select(SEGMENTS).prop_map(String::from),
                1 => any::<String>().prop_map(|s| s.chars().take(6).collect()),
            ]
        }

        /// Mostly an ID Mesos would accept there, sometimes anything.
        fn id() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => prop::sample::select(&["S0", "F-1", "app.1", "c0ffee-1", "x:y", "ü"][..])
                    .prop_map(String::from),
                1 => segment(),
            ]
        }

        /// Mostly the word the shape wants there, so that many paths get past the first checks.
        fn word(expected: &'static str) -> impl Strategy<Value = String> {
            prop_oneof![4 => Just(expected.to_string()), 1 => segment()]
        }

        fn sandbox_path() -> impl Strategy<Value = String> {
            let shaped = (
                prop::collection::vec(segment(), 0..3),
                (word("slaves"), id(), word("frameworks"), id()),
                (word("executors"), id(), word("runs"), id()),
            )
                .prop_map(|(prefix, a, b)| {
                    let mut parts = prefix;
                    parts.extend([a.0, a.1, a.2, a.3, b.0, b.1, b.2, b.3]);
                    parts.join("/")
                });
            let any_shape = prop::collection::vec(segment(), 0..12).prop_map(|p| p.join("/"));
            (
                prop::bool::weighted(0.9),
                prop_oneof![3 => shaped, 1 => any_shape],
            )
                .prop_map(|(absolute, path)| if absolute { format!("/{path}") } else { path })
        }

        fn docker_name(n: &str) -> bool {
            n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn no_path_escapes_or_panics(path in sandbox_path()) {
                let Ok(run) = RunLayout::from_sandbox(OsStr::new(&path), &IdVariables::default())
                else {
                    return Ok(());
                };
                for id in [&run.agent_id, &run.framework_id, &run.executor_id] {
                    prop_assert!(validate_id("id", id).is_ok(), "{id:?} from {path:?}");
                }
                prop_assert!(validate_container_id(&run.container_id).is_ok(), "{path:?}");
                prop_assert!(docker_name(&run.sibling_name()), "{}", run.sibling_name());
                prop_assert!(is_within(&run.forked_pid_path(), &run.meta_run_dir()), "{path:?}");
                prop_assert!(is_within(&run.meta_run_dir(), &run.work_dir.join("meta")), "{path:?}");
                prop_assert!(is_within(&run.sandbox, &run.work_dir.join("slaves")), "{path:?}");
                prop_assert!(is_within(&run.exit_record_path(), &run.sandbox), "{path:?}");
            }
        }

        #[test]
        fn the_generator_reaches_the_accepting_paths() {
            use proptest::strategy::ValueTree;
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let accepted = (0..2000)
                .filter(|_| {
                    let path = sandbox_path().new_tree(&mut runner).unwrap().current();
                    RunLayout::from_sandbox(OsStr::new(&path), &IdVariables::default()).is_ok()
                })
                .count();
            assert!(accepted > 200, "{accepted} of 2000 accepted");
        }
    }
}
