//! What the docker executor asked its `docker` CLI for, read from the command line the executor
//! built (`Docker::run` and the rest: `docker -H <socket> <command> ...`). Only the attached
//! `run` of a named container is followed; every other command goes to the real CLI untouched.

/// The attached `docker -H <host> run ... --name <name> ...` of a task container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttachedRun {
    /// The daemon the executor named (`-H`), as Docker spells it.
    pub host: String,
    /// The container's name (`mesos-<container-id>` for a docker task).
    pub name: String,
}

/// The CLI's global options that take a value, as `docker --help` lists them.
const GLOBAL_WITH_VALUE: [&str; 10] = [
    "-H",
    "--host",
    "-c",
    "--context",
    "--config",
    "-l",
    "--log-level",
    "--tlscacert",
    "--tlscert",
    "--tlskey",
];

/// The options Mesos's `Docker::run` writes with their value in the next argument, before the
/// task's parameters. Their values are the task's (its environment, volumes, hostname, network):
/// read as options, they could name any container.
const MESOS_WITH_VALUE: [&str; 15] = [
    "--cpu-shares",
    "--cpu-quota",
    "--memory-reservation",
    "--memory",
    "--oom-score-adj",
    "-e",
    "-v",
    "--net",
    "--dns",
    "--dns-search",
    "--dns-opt",
    "--hostname",
    "-p",
    "--entrypoint",
    "--name",
];

/// The one option Mesos's `Docker::run` writes without a value.
const MESOS_FLAG: &str = "--privileged";

/// The attached `run` among `args` (the CLI's arguments, without `argv[0]`), if that is what
/// they ask for and they name both the daemon and the container.
pub(crate) fn attached_run(args: &[String]) -> Option<AttachedRun> {
    let mut host = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if !arg.starts_with('-') {
            break;
        }
        let (option, inline) = match arg.split_once('=') {
            Some((option, value)) => (option, Some(value)),
            None => (arg, None),
        };
        let value = match (GLOBAL_WITH_VALUE.contains(&option), inline) {
            (false, _) => None,
            (true, Some(value)) => Some(value),
            (true, None) => {
                i += 1;
                Some(args.get(i)?.as_str())
            }
        };
        if matches!(option, "-H" | "--host") {
            host = value.map(str::to_string);
        }
        i += 1;
    }
    if args.get(i).map(String::as_str) != Some("run") {
        return None;
    }
    let name = attached_name(&args[i + 1..])?;
    valid_name(&name).then_some(AttachedRun { host: host?, name })
}

/// The container `run`'s options (`run` as Mesos writes it: its own options, then the task's
/// parameters as `--key=value`, then the image) name, where they leave it attached. Read as the
/// CLI reads them, up to the image: an option of another shape, any name but the one Mesos
/// gave, or a detach that is not plainly off is not a run to follow.
fn attached_name(run: &[String]) -> Option<String> {
    let mut names = Vec::new();
    let mut i = 0;
    while let Some(arg) = run.get(i).filter(|a| a.starts_with('-')) {
        if MESOS_WITH_VALUE.contains(&arg.as_str()) {
            let value = run.get(i + 1)?;
            if arg == "--name" {
                names.push(value.as_str());
            }
            i += 2;
            continue;
        }
        match arg.split_once('=') {
            _ if arg == MESOS_FLAG => {}
            Some(("--name", value)) => names.push(value),
            Some(("--detach", value)) if cli_bool(value) != Some(false) => return None,
            Some((option, _)) if option.starts_with("--") => {}
            _ => return None,
        }
        i += 1;
    }
    let (first, rest) = names.split_first()?;
    rest.iter().all(|n| n == first).then(|| first.to_string())
}

/// A boolean option's value as the CLI reads it (Go's `strconv.ParseBool`).
fn cli_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Docker's own rule for container names (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`): the name goes into
/// request paths.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_docker_executors_run_is_followed() {
        let line = "-H unix:///run/d/docker.sock run --cpu-shares 1024 --memory 33554432 \
                    -e MESOS_SANDBOX=/mnt/mesos/sandbox -v /s:/mnt/mesos/sandbox --net host \
                    --entrypoint /bin/sh --name mesos-5e1c busybox -c sleep";
        assert_eq!(
            attached_run(&args(line)),
            Some(AttachedRun {
                host: "unix:///run/d/docker.sock".into(),
                name: "mesos-5e1c".into()
            })
        );
        assert_eq!(
            attached_run(&args("--host=tcp://h:2375 -D run --name=mesos-x img")),
            Some(AttachedRun {
                host: "tcp://h:2375".into(),
                name: "mesos-x".into()
            }),
            "inline values and a flag without one"
        );
    }

    /// A task's environment, hostname and network are values of Mesos's own options: a value
    /// that looks like `--name` names nothing, and a parameter naming another container makes
    /// the run not the task container's.
    #[test]
    fn only_mesos_names_the_container() {
        let mesos = "-H unix:///d.sock run --name mesos-5e1c";
        for injected in [
            "-H unix:///d.sock run -e --name=victim --name mesos-5e1c busybox",
            "-H unix:///d.sock run --hostname --name=victim --name mesos-5e1c busybox",
            "-H unix:///d.sock run --net --name --name mesos-5e1c busybox",
        ] {
            assert_eq!(
                attached_run(&args(injected)).map(|r| r.name),
                Some("mesos-5e1c".to_string()),
                "{injected}"
            );
        }
        for line in [
            format!("{mesos} --name=victim busybox"),
            format!("{mesos} --detach=1 busybox"),
            format!("{mesos} --detach=True busybox"),
            format!("{mesos} --detach= busybox"),
            "-H unix:///d.sock run -itd --name mesos-5e1c busybox".to_string(),
            "-H unix:///d.sock run -dit --name mesos-5e1c busybox".to_string(),
            "-H unix:///d.sock run --some-new-flag --name mesos-5e1c busybox".to_string(),
        ] {
            assert_eq!(attached_run(&args(&line)), None, "{line}");
        }
        for line in [
            format!("{mesos} --detach=false busybox -d --name=victim"),
            format!("{mesos} --name=mesos-5e1c busybox"),
            format!("{mesos} busybox sh -c 'date -d @0'"),
        ] {
            assert_eq!(
                attached_run(&args(&line)).map(|r| r.name),
                Some("mesos-5e1c".to_string()),
                "{line}: the image's arguments are the image's"
            );
        }
    }

    #[test]
    fn anything_else_goes_to_the_real_cli_untouched() {
        for line in [
            "-H unix:///d.sock inspect mesos-5e1c",
            "-H unix:///d.sock stop -t 3 mesos-5e1c",
            "-H unix:///d.sock --version",
            "-H unix:///d.sock ps -a",
            "-H unix:///d.sock run -d --name mesos-5e1c img",
            "-H unix:///d.sock run --detach --name mesos-5e1c img",
            "-H unix:///d.sock run img",
            "run --name mesos-5e1c img",
            "-H unix:///d.sock run --name ../../x img",
            "-H unix:///d.sock run --name",
            "-H",
            "",
        ] {
            assert_eq!(attached_run(&args(line)), None, "{line}");
        }
    }
}
