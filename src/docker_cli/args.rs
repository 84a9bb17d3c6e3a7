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

/// `run`'s options that leave the container running in the background, or attach nothing:
/// the CLI's exit is then not the container's, and is left to mean what it means.
const NOT_ATTACHED: [&str; 3] = ["-d", "--detach", "--detach=true"];

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
    let run = &args[i + 1..];
    if run.iter().any(|a| NOT_ATTACHED.contains(&a.as_str())) {
        return None;
    }
    let name = run
        .iter()
        .enumerate()
        .find_map(|(j, a)| match a.strip_prefix("--name") {
            Some("") => run.get(j + 1).cloned(),
            Some(inline) => inline.strip_prefix('=').map(str::to_string),
            None => None,
        })?;
    valid_name(&name).then_some(AttachedRun { host: host?, name })
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
