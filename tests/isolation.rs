//! The Mesos container the executor ran in, carried into the sibling or handed back (issue: the
//! Mesos container). The stand-in agent builds the launch's container as Mesos's isolators
//! would: an agent container with a capability dropped or a lower `nofile` rlimit gives its
//! launches exactly that (contract page, *How the agent starts an executor*: the helper applies
//! what the isolators prepared, capabilities and rlimits among them), and `EXECUTOR_USER` runs
//! the executor as the framework's user, as `--switch_user` does (*The user*).

mod common;

use std::time::{Duration, Instant};

use common::*;

/// A `Field:` line of the stand-in executor's `executor.context`.
fn field(context: &str, name: &str) -> String {
    context
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {context}"))
        .trim()
        .to_string()
}

fn has_capability(context: &str, bit: u32) -> bool {
    u64::from_str_radix(&field(context, "CapEff"), 16).unwrap() & (1 << bit) != 0
}

/// Starts `agent` for a new run and asserts the launch is refused at once (78, within seconds,
/// never after a retry), its message naming each of `named`, with no sibling made.
fn assert_refused_at_once(tag: &str, agent: &Agent, named: &[&str]) -> Run {
    let refused = Run::new(tag);
    let started = Instant::now();
    let name = refused.start_agent(agent);
    assert_eq!(refused.wait_agent_status(&name), 78, "{}", refused.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "at once, never after a retry: {:?}",
        started.elapsed()
    );
    let stderr = refused.stderr();
    assert!(named.iter().all(|n| stderr.contains(n)), "{stderr}");
    assert!(refused.containers_named_sibling().is_empty());
    refused
}

/// Asserts that the launch of `run` (agent container `agent`) was handed back: the stock
/// executor runs on in the agent container, said once, and no sibling was made.
fn assert_handed_back(run: &Run, agent: &str) {
    assert!(
        run.stderr()
            .contains("this run will not survive that container"),
        "{}",
        run.stderr()
    );
    run.assert_output_grows();
    assert!(run.containers_named_sibling().is_empty());
    assert_eq!(
        run.agent_status(),
        None,
        "the stock executor runs on: {}",
        run.diagnostics(agent)
    );
}

const NET_RAW: u32 = 13;
const CHOWN: u32 = 0;

/// The agent container lost NET_RAW and CHOWN (as `linux/capabilities` would drop them) and
/// runs with `nofile` 1234: the executor in the sibling has neither capability and the same
/// limit. Control: a launch from an agent container with Docker's defaults has both
/// capabilities, so the check can tell the difference.
#[test]
fn a_dropped_capability_and_a_lowered_rlimit_hold_in_the_sibling() {
    let confined = Run::new("confined");
    let agent = confined.start_agent(&Agent::with_shim().run_args(&[
        "--cap-drop",
        "NET_RAW",
        "--cap-drop",
        "CHOWN",
        "--ulimit",
        "nofile=1234:1234",
    ]));
    confined.wait_for_checkpointed_sibling(&agent);
    let context = confined.executor_file("executor.context");
    assert!(!has_capability(&context, NET_RAW), "{context}");
    assert!(!has_capability(&context, CHOWN), "{context}");
    assert_eq!(field(&context, "nofile"), "1234 1234", "{context}");

    let control = Run::new("unconfined");
    let agent = control.start_agent(&Agent::with_shim());
    control.wait_for_checkpointed_sibling(&agent);
    let context = control.executor_file("executor.context");
    assert!(has_capability(&context, NET_RAW), "{context}");
    assert!(has_capability(&context, CHOWN), "{context}");
    assert_ne!(field(&context, "nofile"), "1234 1234");
}

/// `cap_add` in the configuration adds only within the launch's bounding set.
#[test]
fn cap_add_never_exceeds_what_the_launch_could_have() {
    let run = Run::new("capadd");
    let agent = run.start_agent(
        &Agent::with_shim()
            .run_args(&["--cap-drop", "NET_RAW"])
            .set("cap_add", serde_json::json!(["NET_RAW", "SYS_PTRACE"])),
    );
    run.wait_for_checkpointed_sibling(&agent);
    let context = run.executor_file("executor.context");
    assert!(!has_capability(&context, NET_RAW), "{context}");
    assert!(
        run.stderr()
            .contains("not giving the sibling these capabilities of cap_add"),
        "{}",
        run.stderr()
    );
}

/// A launch as a non-root framework user (the agent's `--switch_user`) cannot be relayed: with
/// the shim bind-mounted (no stock executor to hand back to) it fails at once, naming the cause
/// and what to do, and nothing is made; baked into the image, the shim becomes the stock
/// executor, which runs the task in the agent container as before, and says this run will not
/// survive that container.
#[test]
fn a_launch_as_another_user_is_refused_at_once_or_handed_back() {
    assert_refused_at_once(
        "asnobody",
        &Agent::with_shim().env("EXECUTOR_USER", "nobody"),
        &["runs as uid 65534", "--switch_user"],
    );

    let handed_back = Run::new("asnobodybaked");
    let agent = handed_back.start_agent(&Agent::baked().env("EXECUTOR_USER", "nobody"));
    let context = handed_back.executor_file("executor.context");
    assert!(field(&context, "Uid").starts_with("65534"), "{context}");
    assert_handed_back(&handed_back, &agent);
}

/// A launch in a network namespace of its own (what `network/cni` gives an executor; the
/// stand-in's launch helper unshares one) cannot be carried by a host-network sibling: refused at
/// once with the bind-mounted shim, handed back to the stock executor, still in that namespace,
/// with the baked one.
#[test]
fn a_launch_in_its_own_network_namespace_is_refused_at_once_or_handed_back() {
    // Unsharing a network namespace takes CAP_SYS_ADMIN in the agent container, as the real
    // isolator's does.
    let own_network = |agent: Agent| {
        agent
            .env("EXECUTOR_NETWORK", "own")
            .run_args(&["--cap-add", "SYS_ADMIN"])
    };
    assert_refused_at_once(
        "ownnet",
        &own_network(Agent::with_shim()),
        &["network namespace of its own", "network/cni"],
    );

    let handed_back = Run::new("ownnetbaked");
    let agent = handed_back.start_agent(&own_network(Agent::baked()));
    let executor: u32 = handed_back
        .executor_file("executor.pid")
        .trim()
        .parse()
        .unwrap();
    let netns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_ne!(
        netns(executor),
        netns(handed_back.agent_pid().unwrap()),
        "the stock executor keeps the namespace the isolator gave it"
    );
    assert_handed_back(&handed_back, &agent);
}

/// A command task with a container image (`--rootfs`, the filesystem/linux isolator): its root
/// filesystem exists only in the agent's mount namespace, so the launch is refused at once.
#[test]
fn a_launch_with_a_container_image_is_refused_at_once() {
    let run = Run::new("rootfs");
    let agent = run.start_agent(
        &Agent::with_shim()
            .args(&["--rootfs=/var/lib/mesos/provisioner/containers/x/backends/copy/rootfses/y"]),
    );
    assert_eq!(run.wait_agent_status(&agent), 78, "{}", run.stderr());
    assert!(run.stderr().contains("container image"), "{}", run.stderr());
    assert!(run.containers_named_sibling().is_empty());
}

/// The tick numbers in `text` (lines `<prefix><n>`), in the order they appear.
fn ticks(text: &str, prefix: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix)?.parse().ok())
        .collect()
}

fn consecutive(numbers: &[u64]) -> bool {
    numbers.windows(2).all(|w| w[1] == w[0] + 1)
}

/// With a container logger other than the sandbox's (the stand-in's pipes, as logrotate's or
/// journald's), the executor's output reaches the logger, complete and in order, while the shim
/// lives, and never the sandbox files; once the agent container (logger and shim with it) is
/// gone, the sibling's init takes over where the logger stopped and writes the sandbox files,
/// each rotated before it passes `sandbox_output_max_bytes`. The control is the sandbox logger
/// of every other test: there the executor's ticks are in the sandbox's `stdout` from the start.
#[test]
fn output_reaches_a_container_logger_while_the_shim_lives_and_bounded_files_after() {
    const BOUND: u64 = 2048;
    let run = Run::new("logger");
    let agent = run.start_agent(
        &Agent::with_shim()
            .env("CONTAINER_LOGGER", "pipe")
            .set(
                "sandbox_output_max_bytes",
                serde_json::json!(BOUND.to_string()),
            )
            .args(&["--tick_interval=0.02", "--tick_stderr=1"]),
    );
    run.wait_for_checkpointed_sibling(&agent);
    let records = run.standin_records();
    let logger = |name: &str| run.read(records.join(name)).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ticks(&logger("logger.stdout"), "tick ").len() < 50 {
        assert!(
            Instant::now() < deadline,
            "the executor's ticks never reached the logger through the shim; sandbox stderr:\n{}\nlogger's stderr:\n{}\nagent:\n{}",
            run.stderr(),
            logger("logger.stderr"),
            run.agent_logs(&agent)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Once the shim has re-executed into its waiting mode, the output still comes: the pipes
    // passed across the exec.
    let shim = run.shim_pid().unwrap();
    wait_until(
        "the shim enters its waiting mode",
        Duration::from_secs(60),
        || {
            std::fs::read(format!("/proc/{shim}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"mesos-executor-shim-wait"))
        },
    );
    let before = ticks(&logger("logger.stdout"), "tick ").len();
    wait_until(
        "the executor's ticks reach the logger from the waiting shim",
        Duration::from_secs(30),
        || ticks(&logger("logger.stdout"), "tick ").len() >= before + 20,
    );
    let sandbox_stdout = run.read(run.sandbox().join("stdout")).unwrap_or_default();
    assert!(
        ticks(&sandbox_stdout, "tick ").is_empty(),
        "the sandbox file got output the logger should have: {sandbox_stdout}"
    );
    wait_until(
        "the executor's stderr reaches the logger",
        Duration::from_secs(10),
        || !ticks(&logger("logger.stderr"), "err tick ").is_empty(),
    );

    run.kill_agent(&agent);
    let at_logger = ticks(&logger("logger.stdout"), "tick ");
    assert_eq!(at_logger.first(), Some(&0), "{at_logger:?}");
    assert!(
        consecutive(&at_logger),
        "the logger got every line in order: {at_logger:?}"
    );
    let in_files = || {
        let file = |name: &str| run.read(run.sandbox().join(name)).unwrap_or_default();
        ticks(&(file("stdout.1") + &file("stdout")), "tick ")
    };
    wait_until(
        "the sibling's init writes the sandbox files once the shim is gone",
        Duration::from_secs(30),
        || !in_files().is_empty(),
    );
    let taken_over = in_files();
    // Nothing twice; the only lines that may be missing are those the logger had not yet read
    // from its own pipe (or the shim held mid-copy) when the agent container was killed: a
    // fraction of a second's worth, lost with the logger as they would have been without the shim.
    let last = *at_logger.last().unwrap();
    assert!(
        taken_over[0] > last && taken_over[0] <= last + 25,
        "the init takes over where the logger stopped (its last line: {last}): {taken_over:?}"
    );
    assert!(consecutive(&taken_over), "{taken_over:?}");
    // The executor lives on, and its files stay within the bound, rotated.
    wait_until(
        "the init rotates the sandbox's stdout",
        Duration::from_secs(60),
        || run.sandbox().join("stdout.1").exists() && !in_files().is_empty(),
    );
    for name in ["stdout", "stdout.1", "stderr", "stderr.1"] {
        if let Ok(meta) = std::fs::metadata(run.sandbox().join(name)) {
            assert!(meta.len() <= BOUND, "{name} holds {} bytes", meta.len());
        }
    }
    assert!(
        run.sibling_pid().is_some(),
        "the executor outlives the agent container"
    );
    assert!(consecutive(&in_files()), "{:?}", in_files());
}

/// An executor that writes and exits at once, under a container logger: every line reaches the
/// logger, in order, before the shim leaves with the executor's status (what the pipes held when
/// it exited is read to the end).
#[test]
fn an_executor_that_exits_at_once_leaves_all_its_output_with_the_logger() {
    let run = Run::new("logger-quick");
    let agent = run.start_agent(&Agent::with_shim().env("CONTAINER_LOGGER", "pipe").args(&[
        "--exit_after=500",
        "--tick_interval=0",
        "--exit_code=3",
    ]));
    wait_until(
        "the shim exits with the executor's status",
        Duration::from_secs(60),
        || run.agent_status().is_some(),
    );
    assert_eq!(run.agent_status(), Some(3), "{}", run.diagnostics(&agent));
    let logged = || {
        run.read(run.standin_records().join("logger.stdout"))
            .unwrap_or_default()
    };
    // The logger (its own reader of its own pipe) may still be writing the last of it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ticks(&logged(), "tick ").len() < 500 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let logged = logged();
    let at_logger = ticks(&logged, "tick ");
    assert_eq!(at_logger, (0..500).collect::<Vec<_>>(), "{logged}");
    let sandbox_stdout = run.read(run.sandbox().join("stdout")).unwrap_or_default();
    assert!(
        ticks(&sandbox_stdout, "tick ").is_empty(),
        "{sandbox_stdout}"
    );
}
