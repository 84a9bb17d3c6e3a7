//! What passes between the shim and its sibling's init, and nothing else: the init's arguments
//! (shim to init) and the exit record (init to shim). Small, explicit and versioned, because the
//! two need not be the same build: after an operator replaces the shim's host file, an agent
//! container still runs the old shim while new siblings bind the new file as their init, and a
//! shim may adopt a sibling that an older shim made.
//!
//! The rules that keep versions working together:
//! - every argument is `key=value`, and `protocol=N` says which version wrote them; a reader
//!   ignores keys it does not know (an older init under a newer shim) and gives keys it misses
//!   their defaults (a newer init under an older shim);
//! - only what an executor cannot run without is required: `stdout`, `stderr`, `exit-record` and
//!   the executor itself; a later version may add keys, never require new ones;
//! - the exit record is a JSON object whose `status` every version writes; readers ignore other
//!   fields.
//!
//! Version 1, as [`InitArgs::to_argv`] writes it:
//!
//! ```text
//! <init> mesos-executor-shim-init protocol=1 stdout=<file> stderr=<file> exit-record=<file>
//!        [shim=<pid>:<start> agent=<pid>:<start> settle-ms=<n>]
//!        [output-reader=<pid>:<start> output-max-bytes=<n>]
//!        [log-level=<level> log-format=<text|json>] -- <executor> <args...>
//! ```
//!
//! `output-reader` (added in version 1, ignored by inits that predate it, which append to the
//! sandbox files as before): the executor's output goes through pipes that this process (the
//! shim) reads while it lives; see [`crate::output`].
//!
//! `log-level`, `log-format` (added in version 1, ignored by inits that predate it, which log as
//! text at info): the configuration file's log settings, which the init cannot read itself: it
//! runs in the sibling, and its environment is the task's (see [`crate::logging`]).
//!
//! The docker executor's CLI: where the shim points the docker executor's `--docker` at the init
//! binary (see [`crate::docker_cli`]), it names the real CLI in the executor's environment, as
//! [`REAL_CLI_VAR`]; the binary answers as the CLI when called with `-H` first in a sibling.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::key_value::{self, arg};
use crate::logging::LogSettings;
use crate::proc::ProcessIdentity;

/// The signals the shim passes on to its sibling's init, and the init to the executor. SIGKILL
/// and SIGSTOP cannot be caught: a SIGKILL of the shim alone is what the init's watch answers.
pub(crate) const FORWARDED_SIGNALS: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// [`FORWARDED_SIGNALS`] as a set.
pub(crate) fn forwarded_signal_set() -> nix::sys::signal::SigSet {
    FORWARDED_SIGNALS.into_iter().collect()
}

/// The sibling's init is the shim binary with this first argument (whatever its name).
pub const INIT_ARG: &str = "mesos-executor-shim-init";
/// The version this build writes.
pub(crate) const PROTOCOL: u32 = 1;

/// The variable in which the shim gives the docker executor (and so the CLI it runs) the real
/// CLI the agent named in `--docker`. Not one of the executor's flags: its parser ignores it.
pub(crate) const REAL_CLI_VAR: &str = "MESOS_EXECUTOR_SHIM_DOCKER_CLI";

/// An exit record is a short JSON object; a longer file is not one.
pub(crate) const EXIT_RECORD_CAP: u64 = 4096;
/// The bound on each sandbox output file an init uses when the shim passes none: the settings'
/// default.
pub(crate) const DEFAULT_OUTPUT_MAX_BYTES: u64 = crate::config::DEFAULT_SANDBOX_OUTPUT_MAX_BYTES;
/// The settle time an init uses when the shim passes none: the settings' default.
pub(crate) const DEFAULT_SETTLE: Duration = crate::config::DEFAULT_SHIM_DEATH_SETTLE;

/// Whom the init watches: when `shim` dies while `agent` (the process that forked the shim) is
/// still alive `settle` later, the agent killed the shim, and the executor goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShimWatch {
    pub shim: ProcessIdentity,
    pub agent: ProcessIdentity,
    pub settle: Duration,
}

/// The executor's output through the shim: `reader` reads it while it lives; after, the init
/// writes the sandbox files, each rotated before it passes `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutputRelay {
    pub reader: ProcessIdentity,
    pub max_bytes: u64,
}

/// The init's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InitArgs {
    /// The version of whoever wrote them.
    pub protocol: u32,
    /// The sandbox files the executor's output is appended to.
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Where the init records the executor's exit status.
    pub exit_record: PathBuf,
    /// `None`: the init ends the executor for nobody's death (`end_with_shim: false`, or no
    /// agent the shim could name).
    pub watch: Option<ShimWatch>,
    /// `Some`: the output goes through the shim (a container logger holds its stdout).
    pub output: Option<OutputRelay>,
    /// How the init logs: the configuration file's settings, as the shim read them.
    pub log: LogSettings,
    /// The executor's path and arguments.
    pub executor: Vec<String>,
}

/// Arguments parsed, with what was ignored in them (for the init's log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedInitArgs {
    pub args: InitArgs,
    pub ignored: Vec<String>,
}

impl InitArgs {
    /// The sibling's command line: `init` (the init binary's path in the sibling) then the rest.
    pub(crate) fn to_argv(&self, init: &Path) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        let mut argv = vec![
            path(init),
            INIT_ARG.to_string(),
            arg("protocol", self.protocol),
            arg("stdout", path(&self.stdout)),
            arg("stderr", path(&self.stderr)),
            arg("exit-record", path(&self.exit_record)),
        ];
        if let Some(w) = &self.watch {
            argv.push(arg("shim", w.shim));
            argv.push(arg("agent", w.agent));
            argv.push(arg("settle-ms", w.settle.as_millis()));
        }
        if let Some(o) = &self.output {
            argv.push(arg("output-reader", o.reader));
            argv.push(arg("output-max-bytes", o.max_bytes));
        }
        argv.extend(self.log.to_args());
        argv.push("--".to_string());
        argv.extend(self.executor.iter().cloned());
        argv
    }

    /// Reads the arguments that follow [`INIT_ARG`], of this version or any other.
    pub(crate) fn parse(args: &[String]) -> Result<ParsedInitArgs, String> {
        let split = args
            .iter()
            .position(|a| a == "--")
            .ok_or("no `--` before the executor")?;
        let (keys, executor) = (&args[..split], &args[split + 1..]);
        if executor.is_empty() {
            return Err("no executor after `--`".into());
        }
        let mut ignored = Vec::new();
        let (mut protocol, mut stdout, mut stderr, mut exit_record) = (None, None, None, None);
        let (mut shim, mut agent, mut settle) = (None, None, None);
        let (mut output_reader, mut output_max) = (None, None);
        let mut log = LogSettings::default();
        for entry in keys {
            let Some((key, value)) = key_value::split(entry) else {
                ignored.push(entry.clone());
                continue;
            };
            let understood = match key {
                "protocol" => value.parse().map(|v| protocol = Some(v)).is_ok(),
                "stdout" => absolute(value).map(|p| stdout = Some(p)).is_some(),
                "stderr" => absolute(value).map(|p| stderr = Some(p)).is_some(),
                "exit-record" => absolute(value).map(|p| exit_record = Some(p)).is_some(),
                "shim" => value.parse().map(|v| shim = Some(v)).is_ok(),
                "agent" => value.parse().map(|v| agent = Some(v)).is_ok(),
                "settle-ms" => value
                    .parse()
                    .map(|ms| settle = Some(Duration::from_millis(ms)))
                    .is_ok(),
                "output-reader" => value.parse().map(|v| output_reader = Some(v)).is_ok(),
                "output-max-bytes" => value.parse().map(|v| output_max = Some(v)).is_ok(),
                key if LogSettings::is_key(key) => log.read_arg(key, value),
                _ => false,
            };
            if !understood {
                ignored.push(entry.clone());
            }
        }
        let required = |value: Option<PathBuf>, key: &str| {
            value.ok_or_else(|| format!("no {key}=<absolute path>"))
        };
        let args = InitArgs {
            protocol: protocol.ok_or("no protocol=<version>")?,
            stdout: required(stdout, "stdout")?,
            stderr: required(stderr, "stderr")?,
            exit_record: required(exit_record, "exit-record")?,
            watch: match (shim, agent) {
                (Some(shim), Some(agent)) => Some(ShimWatch {
                    shim,
                    agent,
                    settle: settle.unwrap_or(DEFAULT_SETTLE),
                }),
                _ => None,
            },
            output: output_reader.map(|reader| OutputRelay {
                reader,
                max_bytes: output_max.unwrap_or(DEFAULT_OUTPUT_MAX_BYTES),
            }),
            log,
            executor: executor.to_vec(),
        };
        Ok(ParsedInitArgs { args, ignored })
    }
}

fn absolute(value: &str) -> Option<PathBuf> {
    let path = PathBuf::from(value);
    path.is_absolute().then_some(path)
}

/// The executor's exit, as the init records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct ExitRecord {
    pub protocol: u32,
    /// The status to leave with: the exit code, or 128+n for a death by signal n.
    pub status: u8,
    /// The signal the executor died of, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

/// Whether signal number `n`'s default action ends a process: every signal but those that stop,
/// continue or are ignored by default (and the real-time ones, which end it too).
pub(crate) fn ends_a_process(n: i32) -> bool {
    use Signal::*;
    let sigrtmin = nix::libc::SIGRTMIN();
    let sigrtmax = nix::libc::SIGRTMAX();
    if (sigrtmin..=sigrtmax).contains(&n) {
        return true;
    }
    match Signal::try_from(n) {
        Ok(SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU | SIGCONT | SIGCHLD | SIGURG | SIGWINCH) => false,
        Ok(_) => true,
        Err(_) => false,
    }
}

/// What any version's record holds that this one reads.
#[derive(Deserialize)]
struct AnyVersion {
    status: u8,
    #[serde(default)]
    protocol: Option<u32>,
    #[serde(default)]
    signal: Option<i32>,
}

impl ExitRecord {
    pub(crate) fn exited(code: i32) -> ExitRecord {
        ExitRecord {
            protocol: PROTOCOL,
            status: crate::error::exit_status_from_docker(i64::from(code)),
            signal: None,
        }
    }

    pub(crate) fn killed(signal: i32) -> ExitRecord {
        ExitRecord {
            protocol: PROTOCOL,
            status: crate::error::status_of_signal(signal),
            signal: Some(signal),
        }
    }

    pub(crate) fn to_json(self) -> String {
        serde_json::to_string(&self).expect("serialisable")
    }

    /// Reads a record of any version. The sandbox is the task's to write, so a record is taken
    /// only as an init writes one: a `signal` is one that ends a process (a shim that died of
    /// SIGSTOP would leave the agent waiting for an exit that never comes) and agrees with the
    /// status.
    pub(crate) fn parse(text: &str) -> Result<ExitRecord, String> {
        let any: AnyVersion = serde_json::from_str(text)
            .map_err(|e| format!("unreadable exit record {text:?}: {e}"))?;
        if let Some(signal) = any.signal {
            if !ends_a_process(signal) {
                return Err(format!(
                    "exit record {text:?} names signal {signal}, which does not end a process: not an init's record"
                ));
            }
            if any.status != crate::error::status_of_signal(signal) {
                return Err(format!(
                    "exit record {text:?}: status {} does not go with signal {signal} (128+{signal}): not an init's record",
                    any.status
                ));
            }
        }
        Ok(ExitRecord {
            protocol: any.protocol.unwrap_or(PROTOCOL),
            status: any.status,
            signal: any.signal,
        })
    }

    /// The record at `path`: `Ok(None)` when there is none. It lies in the sandbox, which the
    /// task writes: it is read without following a link or blocking, up to [`EXIT_RECORD_CAP`]
    /// bytes, and only when `owner` (the uid the sibling's init runs as) made it, so a task that
    /// runs as another user cannot stand a record of its own in for the init's.
    pub(crate) fn read(path: &Path, owner: u32) -> io::Result<Option<ExitRecord>> {
        use std::os::unix::fs::MetadataExt;
        let Some((bytes, meta)) = crate::no_follow::read_capped(path, EXIT_RECORD_CAP)? else {
            return Ok(None);
        };
        if meta.uid() != owner {
            return Err(io::Error::other(format!(
                "{} belongs to uid {}, not to the sibling's init (uid {owner}): not its record",
                path.display(),
                meta.uid()
            )));
        }
        let text = String::from_utf8_lossy(&bytes);
        ExitRecord::parse(&text).map(Some).map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn sample() -> InitArgs {
        InitArgs {
            protocol: PROTOCOL,
            stdout: "/w/s/stdout".into(),
            stderr: "/w/s/stderr".into(),
            exit_record: "/w/s/.mesos-executor-shim.exit".into(),
            watch: Some(ShimWatch {
                shim: ProcessIdentity {
                    pid: 10,
                    start: 100,
                },
                agent: ProcessIdentity { pid: 9, start: 90 },
                settle: Duration::from_millis(2500),
            }),
            output: None,
            log: LogSettings::default(),
            executor: strings(&["/usr/libexec/mesos/mesos-executor", "--x=a b", "--"]),
        }
    }

    /// The configuration file's log settings reach the init, which reads no file.
    #[test]
    fn the_log_settings_go_over_and_come_back() {
        use crate::logging::{LogFormat, LogLevel};
        let mut args = sample();
        args.log = LogSettings {
            level: LogLevel::Debug,
            format: LogFormat::Json,
        };
        let argv = args.to_argv(Path::new("/init"));
        assert!(argv.contains(&"log-format=json".to_string()), "{argv:?}");
        let parsed = InitArgs::parse(&argv[2..]).unwrap();
        assert_eq!((parsed.args, parsed.ignored.len()), (args, 0));
    }

    #[test]
    fn the_output_relay_goes_over_and_comes_back() {
        let mut args = sample();
        args.output = Some(OutputRelay {
            reader: ProcessIdentity {
                pid: 10,
                start: 100,
            },
            max_bytes: 4096,
        });
        let argv = args.to_argv(Path::new("/init"));
        assert!(
            argv.contains(&"output-reader=10:100".to_string()),
            "{argv:?}"
        );
        assert_eq!(InitArgs::parse(&argv[2..]).unwrap().args, args);
        // Without a bound, the default one.
        let no_bound: Vec<String> = argv
            .iter()
            .filter(|a| !a.starts_with("output-max-bytes"))
            .cloned()
            .collect();
        let parsed = InitArgs::parse(&no_bound[2..]).unwrap().args;
        assert_eq!(parsed.output.unwrap().max_bytes, DEFAULT_OUTPUT_MAX_BYTES);
    }

    /// Version 1 as the first shims of it wrote it, frozen: a later build must keep reading
    /// exactly this (this one writes the log settings before the `--` too).
    const V1_ARGV: &[&str] = &[
        "/run/mesos-executor-shim/init",
        "mesos-executor-shim-init",
        "protocol=1",
        "stdout=/w/s/stdout",
        "stderr=/w/s/stderr",
        "exit-record=/w/s/.mesos-executor-shim.exit",
        "shim=10:100",
        "agent=9:90",
        "settle-ms=2500",
        "--",
        "/usr/libexec/mesos/mesos-executor",
        "--x=a b",
        "--",
    ];

    #[test]
    fn version_1_is_written_and_read_as_frozen() {
        let argv = sample().to_argv(Path::new("/run/mesos-executor-shim/init"));
        let mut frozen = strings(V1_ARGV);
        let split = frozen.iter().position(|a| a == "--").unwrap();
        frozen.splice(split..split, sample().log.to_args());
        assert_eq!(argv, frozen);
        for argv in [argv, strings(V1_ARGV)] {
            let parsed = InitArgs::parse(&argv[2..]).unwrap();
            assert_eq!(parsed.args, sample());
            assert!(parsed.ignored.is_empty());
        }
    }

    /// An older init under a newer shim: keys it does not know are ignored, and named.
    #[test]
    fn a_newer_shims_arguments_run_the_executor() {
        let newer = strings(&[
            "protocol=7",
            "stdout=/w/s/stdout",
            "stderr=/w/s/stderr",
            "exit-record=/w/s/x",
            "cpu-affinity=0-3",
            "shim=10:100",
            "agent=9:90",
            "--",
            "/e",
        ]);
        let parsed = InitArgs::parse(&newer).unwrap();
        assert_eq!(parsed.args.protocol, 7);
        assert_eq!(parsed.ignored, ["cpu-affinity=0-3"]);
        assert_eq!(parsed.args.executor, ["/e"]);
        assert_eq!(
            parsed.args.watch.unwrap().settle,
            DEFAULT_SETTLE,
            "a missing optional key takes its default"
        );
    }

    /// A newer init under an older shim that passed only what is required: no watch, no error.
    #[test]
    fn the_fewest_arguments_run_the_executor_unwatched() {
        let minimal = strings(&[
            "protocol=1",
            "stdout=/o",
            "stderr=/e",
            "exit-record=/r",
            "--",
            "/e",
            "a",
        ]);
        let parsed = InitArgs::parse(&minimal).unwrap();
        assert_eq!(parsed.args.watch, None);
        assert_eq!(parsed.args.executor, ["/e", "a"]);
        for (missing, why) in [
            (
                vec!["protocol=1", "stdout=/o", "stderr=/e", "--", "/e"],
                "exit-record",
            ),
            (
                vec!["stdout=/o", "stderr=/e", "exit-record=/r", "--", "/e"],
                "protocol",
            ),
            (
                vec![
                    "protocol=1",
                    "stdout=/o",
                    "stderr=/e",
                    "exit-record=/r",
                    "--",
                ],
                "no executor",
            ),
            (
                vec![
                    "protocol=1",
                    "stdout=o",
                    "stderr=/e",
                    "exit-record=/r",
                    "--",
                    "/e",
                ],
                "stdout",
            ),
            (
                vec![
                    "protocol=1",
                    "stdout=/o",
                    "stderr=/e",
                    "exit-record=/r",
                    "/e",
                ],
                "`--`",
            ),
        ] {
            let e = InitArgs::parse(&strings(&missing)).unwrap_err();
            assert!(e.contains(why), "{missing:?}: {e}");
        }
    }

    #[test]
    fn exit_records_of_any_version_give_their_status() {
        let killed = ExitRecord::killed(15);
        assert_eq!(killed.status, 143);
        assert_eq!(
            killed.to_json(),
            r#"{"protocol":1,"status":143,"signal":15}"#
        );
        assert_eq!(ExitRecord::parse(&killed.to_json()), Ok(killed));
        assert_eq!(
            ExitRecord::exited(3).to_json(),
            r#"{"protocol":1,"status":3}"#
        );
        let newer = ExitRecord::parse(r#"{"protocol":4,"status":7,"rusage":{"utime":1}}"#).unwrap();
        assert_eq!((newer.protocol, newer.status), (4, 7));
        assert!(ExitRecord::parse(r#"{"protocol":1}"#).is_err(), "no status");
        assert!(ExitRecord::parse(r#"{"status":300}"#).is_err());
        assert_eq!(ExitRecord::exited(-1).status, 255);
    }

    /// A record is taken only from a regular file of the init's user, within the cap.
    #[test]
    fn a_record_is_read_only_from_the_inits_own_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record");
        let me = nix::unistd::getuid().as_raw();
        assert!(ExitRecord::read(&path, me).unwrap().is_none());
        std::fs::write(&path, ExitRecord::exited(3).to_json()).unwrap();
        assert_eq!(ExitRecord::read(&path, me).unwrap().unwrap().status, 3);
        let e = ExitRecord::read(&path, me + 1).unwrap_err();
        assert!(e.to_string().contains("not to the sibling's init"), "{e}");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(EXIT_RECORD_CAP + 1)
            .unwrap();
        assert!(ExitRecord::read(&path, me).is_err());
    }

    /// The task writes the sandbox: a record that would stop the shim, or whose signal and
    /// status disagree, is not an init's.
    #[test]
    fn a_record_that_no_init_writes_is_refused() {
        for forged in [
            r#"{"status":0,"signal":19}"#,
            r#"{"status":147,"signal":19}"#,
            r#"{"status":146,"signal":18}"#,
            r#"{"status":0,"signal":15}"#,
            r#"{"status":143,"signal":0}"#,
            r#"{"status":143,"signal":-1}"#,
            r#"{"status":255,"signal":999}"#,
        ] {
            let e = ExitRecord::parse(forged).unwrap_err();
            assert!(e.contains("not an init's record"), "{forged}: {e}");
        }
        for signal in [1, 2, 3, 6, 9, 11, 13, 15, 31, nix::libc::SIGRTMIN()] {
            let record = ExitRecord::killed(signal);
            assert_eq!(ExitRecord::parse(&record.to_json()), Ok(record));
        }
    }

    /// The init writes its record beside the task's files: a task that takes the temp names
    /// it can guess first (a directory or a node under each) does not keep it from being written.
    #[test]
    fn a_task_cannot_block_the_record_by_taking_its_temp_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".mesos-executor-shim.exit");
        let pid = std::process::id();
        for n in 0..64 {
            std::fs::create_dir(
                dir.path()
                    .join(format!("..mesos-executor-shim.exit.shim-{pid}-{n}")),
            )
            .unwrap();
        }
        crate::mesos::checkpoint::write_atomically(
            &path,
            ExitRecord::exited(3).to_json().as_bytes(),
        )
        .unwrap();
        let me = nix::unistd::getuid().as_raw();
        assert_eq!(ExitRecord::read(&path, me).unwrap().unwrap().status, 3);
    }
}
