//! Failures of the shim itself, each with an exit status of its own (sysexits.h), so that an
//! operator reading a task's failure can tell "my input was wrong" from "Docker was down"
//! without opening the sandbox. The executor's own status is passed through unchanged.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The launch itself is malformed: MESOS_DIRECTORY, the IDs, argv.
    Usage,
    /// The Docker daemon or the executor image cannot be had.
    Unavailable,
    /// The launch failed part-way (create, start, checkpoint).
    Software,
    /// A setting is unknown or bad.
    Config,
    /// An operator command could not print its report.
    Output,
}

impl Failure {
    pub const ALL: [Failure; 5] = [
        Failure::Usage,
        Failure::Unavailable,
        Failure::Software,
        Failure::Output,
        Failure::Config,
    ];

    /// sysexits.h's code for the class: EX_USAGE, EX_UNAVAILABLE, EX_SOFTWARE, EX_IOERR,
    /// EX_CONFIG.
    pub const fn exit_code(self) -> u8 {
        match self {
            Failure::Usage => 64,
            Failure::Unavailable => 69,
            Failure::Software => 70,
            Failure::Output => 74,
            Failure::Config => 78,
        }
    }
}

/// The command did what was asked (`doctor`: every check passed, warnings included; `gc
/// --every`: stopped by SIGTERM or SIGINT), or the reader of its report went away.
pub(crate) const SUCCESS: u8 = 0;
/// The command ran and reports a problem it found: `doctor`, a check failed; `gc`, a removal
/// failed.
pub(crate) const PROBLEM_FOUND: u8 = 1;

/// A status the binary leaves with, what it means, which commands leave with it (`run` stands
/// for the relay under any name), and what it means for some of them in particular.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExitStatus {
    pub code: u8,
    pub meaning: &'static str,
    pub commands: &'static [&'static str],
    pub notes: &'static [(&'static str, &'static str)],
}

/// Every status of the binary's own, for every command: the one table, which each command's
/// `--help` prints. The relay leaves with the executor's status otherwise (or dies of its
/// signal). A command line that cannot be parsed is a usage failure, for every command.
pub(crate) const EXIT_STATUSES: [ExitStatus; 7] = [
    ExitStatus {
        code: SUCCESS,
        meaning: "done",
        commands: &["doctor", "ps", "gc"],
        notes: &[
            ("doctor", "every check passed (warnings included)"),
            ("gc", "with --every, stopped by SIGTERM or SIGINT"),
        ],
    },
    ExitStatus {
        code: PROBLEM_FOUND,
        meaning: "a problem found and reported",
        commands: &["doctor", "gc"],
        notes: &[("doctor", "a check failed"), ("gc", "a removal failed")],
    },
    ExitStatus {
        code: Failure::Usage.exit_code(),
        meaning: "a bad command line",
        commands: &["run", "doctor", "ps", "gc"],
        notes: &[(
            "run",
            "a malformed launch (MESOS_DIRECTORY, an ID, an argument, a sandbox the agent did \
             not make)",
        )],
    },
    ExitStatus {
        code: Failure::Unavailable.exit_code(),
        meaning: "no Docker daemon answers, or it failed a request",
        commands: &["run", "ps", "gc"],
        notes: &[("run", "the executor image is missing and cannot be pulled")],
    },
    ExitStatus {
        code: Failure::Software.exit_code(),
        meaning: "the shim failed in itself",
        commands: &["run", "doctor", "ps", "gc"],
        notes: &[(
            "run",
            "the launch failed part-way (create, start, checkpoint); the sibling it started is \
             removed",
        )],
    },
    ExitStatus {
        code: Failure::Output.exit_code(),
        meaning: "the report could not be printed (a reader that went away is no failure: 0)",
        commands: &["doctor", "ps", "gc"],
        notes: &[],
    },
    ExitStatus {
        code: Failure::Config.exit_code(),
        meaning: "a bad or untrusted configuration file",
        commands: &["run", "ps", "gc"],
        notes: &[("run", "an agent container without --pid=host")],
    },
];

/// The statuses `command` leaves with, as its `--help` ends.
pub(crate) fn exit_statuses_help(command: &str) -> String {
    let mut help = String::from("Exit status:");
    for status in EXIT_STATUSES
        .iter()
        .filter(|s| s.commands.contains(&command))
    {
        help.push_str(&format!("\n  {:>3}  {}", status.code, status.meaning));
        for (_, note) in status.notes.iter().filter(|(c, _)| *c == command) {
            help.push_str(&format!("; {note}"));
        }
    }
    if command == "run" {
        help.push_str("\n  otherwise the executor's status, or its death by the same signal");
    }
    help
}

/// An error on its way out of the shim, with the class that picks the exit status.
#[derive(Debug)]
pub struct ShimError {
    pub failure: Failure,
    pub error: anyhow::Error,
}

impl fmt::Display for ShimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for ShimError {}

impl ShimError {
    /// The report's reader went away (`ps --json | head`): what was being printed is no longer
    /// wanted, which is no failure of the command's.
    pub(crate) fn is_reader_gone(&self) -> bool {
        self.failure == Failure::Output
            && self
                .error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// `result.classify(Failure::X)?` at the edges where an error's class becomes known.
pub(crate) trait Classify<T> {
    fn classify(self, failure: Failure) -> Result<T, ShimError>;
}

impl<T, E: Into<anyhow::Error>> Classify<T> for Result<T, E> {
    fn classify(self, failure: Failure) -> Result<T, ShimError> {
        self.map_err(|e| ShimError {
            failure,
            error: e.into(),
        })
    }
}

pub(crate) fn fail(failure: Failure, message: impl fmt::Display) -> ShimError {
    ShimError {
        failure,
        error: anyhow::anyhow!("{message}"),
    }
}

/// The status a shell gives a command it cannot find.
pub(crate) const STATUS_NOT_FOUND: u8 = 127;
/// The status a shell gives a command it found but cannot execute.
pub(crate) const STATUS_NOT_EXECUTABLE: u8 = 126;

/// The status a process killed by signal number `signal` leaves with, as a shell and Docker
/// report it: 128+n (255 where that is past the end).
pub fn status_of_signal(signal: i32) -> u8 {
    u8::try_from(128 + i64::from(signal)).unwrap_or(255)
}

/// The shim's exit status for the sibling's: Docker already reports a signal death as 128+n,
/// as a shell does; anything outside 0..=255 (the daemon's -1 for "unknown") becomes 255.
pub(crate) fn exit_status_from_docker(code: i64) -> u8 {
    u8::try_from(code).unwrap_or(255)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_death_is_128_plus_the_signal() {
        assert_eq!(status_of_signal(15), 143);
        assert_eq!(status_of_signal(9), 137);
        assert_eq!(status_of_signal(2), 130);
        assert_eq!(status_of_signal(200), 255);
    }

    #[test]
    fn docker_exit_codes_pass_through() {
        assert_eq!(exit_status_from_docker(0), 0);
        assert_eq!(exit_status_from_docker(3), 3);
        assert_eq!(exit_status_from_docker(137), 137); // SIGKILL
        assert_eq!(exit_status_from_docker(143), 143); // SIGTERM
        assert_eq!(exit_status_from_docker(-1), 255);
        assert_eq!(exit_status_from_docker(256), 255);
    }

    /// Each status is listed once, and a note speaks of a command that leaves with it.
    #[test]
    fn the_exit_status_table_is_consistent() {
        let codes: Vec<u8> = EXIT_STATUSES.iter().map(|s| s.code).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(codes, sorted);
        for failure in Failure::ALL {
            assert!(codes.contains(&failure.exit_code()), "{failure:?}");
        }
        for status in EXIT_STATUSES {
            for (command, _) in status.notes {
                assert!(
                    status.commands.contains(command),
                    "{}: {command}",
                    status.code
                );
            }
        }
        assert!(
            exit_statuses_help("gc").contains("1  a problem found and reported; a removal failed")
        );
        assert!(!exit_statuses_help("ps").contains(" 1  "));
    }

    #[test]
    fn an_error_keeps_its_message_when_classified() {
        let e: Result<(), _> = Err(std::io::Error::other("boom")).classify(Failure::Software);
        let e = e.unwrap_err();
        assert_eq!(
            (e.to_string().as_str(), e.failure),
            ("boom", Failure::Software)
        );
    }
}
