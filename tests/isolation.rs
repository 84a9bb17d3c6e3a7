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
    let refused = Run::new("asnobody");
    let started = Instant::now();
    let agent = refused.start_agent(&Agent::with_shim().env("EXECUTOR_USER", "nobody"));
    assert_eq!(
        refused.wait_agent_status(&agent),
        78,
        "{}",
        refused.stderr()
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "at once, never after a retry: {:?}",
        started.elapsed()
    );
    let stderr = refused.stderr();
    assert!(
        stderr.contains("runs as uid 65534") && stderr.contains("--switch_user"),
        "{stderr}"
    );
    assert!(refused.containers_named_sibling().is_empty());

    let handed_back = Run::new("asnobodybaked");
    let agent = handed_back.start_agent(&Agent::baked().env("EXECUTOR_USER", "nobody"));
    let context = handed_back.executor_file("executor.context");
    assert!(field(&context, "Uid").starts_with("65534"), "{context}");
    assert!(
        handed_back
            .stderr()
            .contains("this run will not survive that container"),
        "{}",
        handed_back.stderr()
    );
    handed_back.assert_output_grows();
    assert!(handed_back.containers_named_sibling().is_empty());
    assert_eq!(
        handed_back.agent_status(),
        None,
        "the stock executor runs on: {}",
        handed_back.diagnostics(&agent)
    );
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
