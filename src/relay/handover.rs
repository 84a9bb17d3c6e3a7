//! What the relay hands the waiting mode across its `exec` (see [`crate::relay::waiting`]):
//! small and explicit, as arguments and inherited descriptors: the pidfd (or, without pidfds,
//! the process's identity), the executor's output pipes, the sibling, where its exit is recorded,
//! the daemon to ask, the log settings.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use crate::config::DockerEndpoint;
use crate::key_value::{self, arg};
use crate::logging::LogSettings;
use crate::output::ShimOutput;
use crate::proc::{Pidfd, ProcessHandle, ProcessIdentity};

/// The first argument that runs the binary in this mode.
pub const WAIT_ARG: &str = "mesos-executor-shim-wait";

/// What the waiting shim needs of its launch, and nothing more.
#[derive(Debug)]
pub struct Handover {
    pub process: ProcessHandle,
    /// The executor's output pipes, when it comes through the shim (see [`crate::output`]).
    pub output: Option<ShimOutput>,
    pub sibling_id: String,
    pub sibling_name: String,
    /// The daemon removes the sibling once it exits.
    pub auto_removed: bool,
    pub exit_record: PathBuf,
    pub endpoint: DockerEndpoint,
    pub log: LogSettings,
}

impl Handover {
    /// The arguments that follow [`WAIT_ARG`]; the pidfd, if any, must stay open across the
    /// `exec` (see [`Handover::keep_across_exec`]).
    pub(crate) fn to_args(&self) -> Vec<String> {
        let process = match &self.process {
            ProcessHandle::Pidfd(pidfd) => format!("pidfd:{}", pidfd.as_raw_fd()),
            ProcessHandle::Poll(identity) => format!("poll:{identity}"),
        };
        let mut args = vec![
            arg("process", process),
            arg("output", self.output_arg()),
            arg("sibling-id", &self.sibling_id),
            arg("sibling-name", &self.sibling_name),
            arg("auto-removed", self.auto_removed),
            arg("exit-record", self.exit_record.display()),
            arg("endpoint", &self.endpoint),
        ];
        args.extend(self.log.to_args());
        args
    }

    /// The output pipes' numbers, `<out>,<err>` (a stream that is done as `-`), or `none`.
    fn output_arg(&self) -> String {
        let Some(output) = &self.output else {
            return "none".into();
        };
        output
            .pipes()
            .map(|p| p.map_or("-".into(), |fd| fd.as_raw_fd().to_string()))
            .join(",")
    }

    /// Clears close-on-exec on the pidfd and the output pipes, so that the waiting mode inherits
    /// them.
    pub(crate) fn keep_across_exec(&self) -> std::io::Result<()> {
        let pipes = self
            .output
            .iter()
            .flat_map(|o| o.pipes().into_iter().flatten());
        let pidfd = self.process.pidfd().map(AsFd::as_fd);
        for fd in pipes.chain(pidfd) {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )?;
        }
        Ok(())
    }

    /// Reads the arguments that follow [`WAIT_ARG`]. Takes ownership of the inherited pidfd.
    pub(crate) fn parse(args: &[String]) -> Result<Handover, String> {
        let get = |key: &str| key_value::value(args, key);
        let process = get("process")?;
        let process = if let Some(fd) = process.strip_prefix("pidfd:") {
            ProcessHandle::Pidfd(Pidfd::from(take_inherited(fd, "pidfd")?))
        } else if let Some(identity) = process.strip_prefix("poll:") {
            ProcessHandle::Poll(identity.parse::<ProcessIdentity>()?)
        } else {
            return Err(format!("bad process={process}"));
        };
        let output = match get("output") {
            Ok("none") | Err(_) => None,
            Ok(numbers) => {
                let numbers: Vec<&str> = numbers.split(',').collect();
                let [out, err] = numbers[..] else {
                    return Err(format!("bad output={}", numbers.join(",")));
                };
                let pipe = |n: &str| {
                    (n != "-")
                        .then(|| take_inherited(n, "output pipe"))
                        .transpose()
                };
                Some(ShimOutput::from_pipes([pipe(out)?, pipe(err)?])?)
            }
        };
        Ok(Handover {
            process,
            output,
            sibling_id: get("sibling-id")?.to_string(),
            sibling_name: get("sibling-name")?.to_string(),
            auto_removed: get("auto-removed")? == "true",
            exit_record: PathBuf::from(get("exit-record")?),
            endpoint: DockerEndpoint::parse(get("endpoint")?)?,
            log: log_settings(args)?,
        })
    }
}

/// The log settings among `args`: both keys required, as the same binary writes them.
fn log_settings(args: &[String]) -> Result<LogSettings, String> {
    let mut log = LogSettings::default();
    let mut read = 0;
    for (key, value) in args.iter().filter_map(|a| key_value::split(a)) {
        if LogSettings::is_key(key) {
            if !log.read_arg(key, value) {
                return Err(format!("bad {key}={value}"));
            }
            read += 1;
        }
    }
    match read {
        2 => Ok(log),
        _ => Err("no log-level= and log-format=".into()),
    }
}

/// Takes over descriptor `number`, handed to this process across the `exec` (`what` names it in
/// errors): it must be open; it is close-on-exec again from here.
fn take_inherited(number: &str, what: &str) -> Result<OwnedFd, String> {
    let fd: RawFd = number
        .parse()
        .map_err(|_| format!("bad {what} {number:?}"))?;
    // SAFETY: only borrowed for one fcntl, which fails harmlessly on a closed number.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_GETFD)
        .map_err(|e| format!("{what} {fd} is not open: {e}"))?;
    // SAFETY: the descriptor is open (checked above) and was handed to this process, which owns
    // it from here on; nothing else in it refers to it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = nix::fcntl::fcntl(
        owned.as_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Ok(owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handover(process: ProcessHandle) -> Handover {
        Handover {
            process,
            output: None,
            sibling_id: "abc".into(),
            sibling_name: "executor-mesos-C".into(),
            auto_removed: true,
            exit_record: "/w/s/.mesos-executor-shim.exit".into(),
            endpoint: DockerEndpoint::parse("unix:///var/run/docker.sock").unwrap(),
            log: LogSettings {
                level: crate::logging::LogLevel::Debug,
                format: crate::logging::LogFormat::Json,
            },
        }
    }

    #[test]
    fn what_is_handed_over_comes_back_whole() {
        let me = ProcessIdentity::current().unwrap();
        let sent = handover(ProcessHandle::Poll(me));
        let back = Handover::parse(&sent.to_args()).unwrap();
        assert!(matches!(back.process, ProcessHandle::Poll(id) if id == me));
        assert_eq!(
            (back.sibling_id.as_str(), back.sibling_name.as_str()),
            ("abc", "executor-mesos-C")
        );
        assert!(back.auto_removed);
        assert_eq!(back.exit_record, sent.exit_record);
        assert_eq!(back.endpoint, sent.endpoint);
        assert_eq!(back.log, sent.log);
        let pidfd = Pidfd::open(std::process::id()).unwrap();
        let sent = handover(ProcessHandle::Pidfd(pidfd));
        sent.keep_across_exec().unwrap();
        let args = sent.to_args();
        // The same descriptor, taken over: the sender lets go of it first.
        std::mem::forget(sent);
        let back = Handover::parse(&args).unwrap();
        assert!(back.process.pidfd().is_some());
        assert!(!back.process.has_exited());
    }

    #[test]
    fn the_output_pipes_are_handed_over_in_their_places() {
        let (read, _write) = nix::unistd::pipe().unwrap();
        let mut sent = handover(ProcessHandle::Poll(ProcessIdentity::current().unwrap()));
        sent.output = Some(ShimOutput::from_pipes([None, Some(read)]).unwrap());
        sent.keep_across_exec().unwrap();
        let args = sent.to_args();
        let number = sent.output.as_ref().unwrap().pipes()[1]
            .unwrap()
            .as_raw_fd();
        assert!(args.contains(&format!("output=-,{number}")), "{args:?}");
        std::mem::forget(sent);
        let back = Handover::parse(&args).unwrap();
        let pipes = back.output.as_ref().unwrap().pipes();
        assert!(pipes[0].is_none());
        assert_eq!(pipes[1].unwrap().as_raw_fd(), number);
        // Not a pipe: refused.
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let mut args = args.clone();
        args[1] = format!("output={},-", file.as_raw_fd());
        let e = Handover::parse(&args).unwrap_err();
        assert!(e.contains("is not a pipe"), "{e}");
        std::mem::forget(file);
    }

    #[test]
    fn a_closed_descriptor_is_refused() {
        let mut args = handover(ProcessHandle::Poll(ProcessIdentity::current().unwrap())).to_args();
        args[0] = "process=pidfd:987654".into();
        let e = Handover::parse(&args).unwrap_err();
        assert!(e.contains("not open"), "{e}");
    }
}
