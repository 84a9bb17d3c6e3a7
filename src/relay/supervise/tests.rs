use std::collections::HashMap;
use std::path::PathBuf;

use bollard::models::ContainerStateStatusEnum as Status;
use futures_util::stream;

use super::*;
use crate::config::Settings;
use crate::mesos::executor::ExecutorKind;
use crate::mesos::layout::{IdVariables, RunLayout};
use crate::proc::ProcessIdentity;
use crate::sibling::spec::SpecInputs;
use crate::test_support::fake::{Container, Executor, Fake};

/// A run under a temp work_dir whose agent checkpointed its own forked pid, 4242.
struct Setup {
    _dir: tempfile::TempDir,
    run: RunLayout,
    spec: SiblingSpec,
    plan: LaunchPlan,
}

const AGENTS_PID: &str = "4242";

fn setup(with_pids_dir: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = dir
        .path()
        .join("slaves/S0/frameworks/F1/executors/app.1/runs/C-1");
    std::fs::create_dir_all(&sandbox).unwrap();
    let run = RunLayout::from_sandbox(sandbox.as_os_str(), &IdVariables::default()).unwrap();
    if with_pids_dir {
        std::fs::create_dir_all(run.forked_pid_path().parent().unwrap()).unwrap();
        std::fs::write(run.forked_pid_path(), AGENTS_PID).unwrap();
    }
    let settings = Settings::default();
    let spec = SiblingSpec::build(&SpecInputs {
        run: &run,
        kind: ExecutorKind::Command,
        settings: &settings,
        image: "img".into(),
        executor: vec!["/usr/libexec/mesos/mesos-executor".into()],
        env: Vec::new(),
        security: crate::mesos::container::SiblingSecurity {
            user: "0:0".into(),
            ..Default::default()
        },
        init_path: "/run/mesos-executor-shim/init".into(),
        init_host_file: Some("/opt/shim".into()),
        sandbox_host: run.sandbox.clone(),
        sandbox_aliases: Vec::new(),
        volumes: Vec::new(),
        docker_socket: None,
        work_dir_host: run.work_dir.clone(),
        forked_pid_host: run.forked_pid_path(),
        checkpointing: true,
        shim: ProcessIdentity::current(),
        agent: None,
        output_reader: None,
        cgroup_parent: None,
        auto_remove: false,
    });
    let plan = LaunchPlan {
        checkpointing: true,
        forked_pid: run.forked_pid_path(),
        agent_forked: vec![AGENTS_PID.parse().unwrap()],
        mount_sources: vec![run.sandbox.clone()],
        forked_pid_timeout: Duration::from_millis(100),
        forked_pid_guard: Duration::from_secs(10),
        exit_record: run.exit_record_path(),
        sweep: Some(crate::relay::Sweep {
            work_dir_host: run.work_dir.clone(),
            seen_from: None,
        }),
        waiting_mode: None,
        relays_output: false,
        #[cfg(feature = "failpoints")]
        pause_at: None,
    };
    Setup {
        _dir: dir,
        run,
        spec,
        plan,
    }
}

fn fake(s: &Setup, executor: Executor) -> Fake {
    Fake::new(executor, &s.plan.exit_record)
}

fn forked_pid(s: &Setup) -> String {
    std::fs::read_to_string(s.run.forked_pid_path()).unwrap()
}

/// Runs the launch against `fake` as both the daemon and the host.
async fn launch(
    s: &Setup,
    fake: &Fake,
    signals: impl Stream<Item = Signal> + Unpin,
) -> Result<Outcome, ShimError> {
    run_sibling_to_exit(
        async || Ok::<_, ShimError>(fake),
        fake,
        fake,
        &s.spec,
        &s.plan,
        signals,
    )
    .await
}

/// One `signal` for the shim, sent once forked.pid names `pid`.
fn once_checkpointed(
    path: PathBuf,
    pid: u32,
    signal: Signal,
) -> impl Stream<Item = Signal> + Unpin {
    Box::pin(stream::once(async move {
        until("forked.pid names the sibling", LOOK, || {
            names(&path, &pid.to_string())
        })
        .await;
        signal
    }))
}

/// Waits until `done` holds, letting the launch run between looks: every `step` of the runtime's
/// clock, or (`None`) at each turn of the scheduler. A launch that never gets there fails the test
/// after 10 s of wall-clock time instead of hanging it.
async fn until(what: &str, step: Option<Duration>, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        match step {
            Some(step) => tokio::time::sleep(step).await,
            None => tokio::task::yield_now().await,
        }
    }
}

const LOOK: Option<Duration> = Some(Duration::from_millis(5));

fn names(path: &std::path::Path, pid: &str) -> bool {
    std::fs::read_to_string(path).ok().as_deref() == Some(pid)
}

fn no_signals() -> impl Stream<Item = Signal> + Unpin {
    stream::pending()
}

#[tokio::test(flavor = "current_thread")]
async fn a_launch_waits_before_it_starts_checkpoints_and_then_needs_no_daemon() {
    let s = setup(true);
    let engine = fake(&s, Executor::Runs { pid: 777 });
    let signals = once_checkpointed(s.run.forked_pid_path(), 777, Signal::SIGTERM);
    let status = launch(&s, &engine, signals).await.unwrap();
    assert_eq!(status, 143);
    assert_eq!(forked_pid(&s), "777");
    let calls = engine.calls();
    assert_eq!(
        calls[..4],
        [
            "create executor-mesos-C-1",
            "wait id-0 next-exit",
            "start id-0",
            "inspect id-0",
        ],
        "the wait is registered before the start"
    );
    assert!(
        calls.contains(&format!("sweep {}", s.run.work_dir.display())),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"signal 777 SIGTERM".to_string()),
        "the signal goes straight to the process: {calls:?}"
    );
    assert!(!calls.iter().any(|c| c.starts_with("kill")), "{calls:?}");
    assert_eq!(
        calls.last().unwrap(),
        "remove id-0",
        "removed after its exit"
    );
    assert!(engine.containers().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn with_the_daemon_gone_signals_and_the_exit_status_still_reach_their_mark() {
    let s = setup(true);
    let engine = fake(&s, Executor::Runs { pid: 777 });
    let path = s.run.forked_pid_path();
    let away = &engine.daemon_away;
    let signals = Box::pin(stream::once(async move {
        until("forked.pid names the sibling", LOOK, || names(&path, "777")).await;
        // The daemon goes away (a restart, a stale socket) once the executor runs.
        *away.borrow_mut() = true;
        Signal::SIGTERM
    }));
    let status = launch(&s, &engine, signals).await.unwrap();
    assert_eq!(
        status, 143,
        "the exit record, not the daemon, gives the status"
    );
    assert_eq!(
        engine.containers().len(),
        1,
        "left for the next launch or gc"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_executor_that_exits_at_once_reports_its_code_and_is_never_checkpointed() {
    let s = setup(true);
    let engine = fake(&s, Executor::ExitsAtOnce { code: 42 });
    let status = launch(&s, &engine, no_signals()).await.unwrap();
    assert_eq!(status, 42);
    assert_eq!(forked_pid(&s), AGENTS_PID);
}

#[tokio::test(flavor = "current_thread")]
async fn an_exit_before_the_pid_is_held_is_an_exit_not_a_configuration_error() {
    let s = setup(true);
    let engine = fake(&s, Executor::ExitsAfterInspect { pid: 777, code: 3 });
    let status = launch(&s, &engine, no_signals()).await.unwrap();
    assert_eq!(status, 3);
    assert_eq!(
        forked_pid(&s),
        AGENTS_PID,
        "a gone pid is never checkpointed"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn without_an_exit_record_the_daemons_status_is_taken() {
    let s = setup(true);
    let mut engine = fake(&s, Executor::ExitsAtOnce { code: 9 });
    engine.records_exit = false;
    assert_eq!(launch(&s, &engine, no_signals()).await.unwrap(), 9);
}

/// A record the init did not write (a task killed its init and left one of its own, claiming
/// success): where the daemon is asked (the sibling is not auto-removed), its word wins.
#[tokio::test(flavor = "current_thread")]
async fn a_record_that_disagrees_with_the_daemon_is_not_the_inits() {
    let s = setup(true);
    let mut engine = fake(&s, Executor::ExitsAtOnce { code: 137 });
    engine.records_exit = false;
    std::fs::write(&s.plan.exit_record, ExitRecord::exited(0).to_json()).unwrap();
    assert_eq!(launch(&s, &engine, no_signals()).await.unwrap(), 137);
}

/// Paused time: the bounded wait for an exit that never comes passes at once.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_running_pid_that_stays_invisible_needs_pid_host_and_the_sibling_is_removed() {
    let s = setup(true);
    let mut engine = fake(&s, Executor::Runs { pid: 777 });
    engine.host_pids_visible = false;
    let e = launch(&s, &engine, no_signals()).await.unwrap_err();
    assert_eq!(e.failure, Failure::Config);
    assert!(e.to_string().contains("--pid=host"), "{e}");
    assert_eq!(engine.calls().last().unwrap(), "remove id-0");
    assert_eq!(forked_pid(&s), AGENTS_PID);
}

/// A signal while the pid cannot be confirmed goes through the daemon, and its exit decides.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_signal_during_the_unconfirmed_wait_goes_through_the_daemon() {
    let s = setup(true);
    let mut engine = fake(&s, Executor::Runs { pid: 777 });
    engine.host_pids_visible = false;
    let signals = Box::pin(stream::once(async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Signal::SIGTERM
    }));
    let status = launch(&s, &engine, signals).await.unwrap();
    assert_eq!(status, 143);
    assert!(engine.calls().contains(&"kill id-0 SIGTERM".to_string()));
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_start_removes_the_sibling() {
    let s = setup(true);
    let mut engine = fake(&s, Executor::Runs { pid: 777 });
    engine.start_fails = true;
    let e = launch(&s, &engine, no_signals()).await.unwrap_err();
    assert_eq!(e.failure, Failure::Software);
    assert_eq!(engine.calls().last().unwrap(), "remove id-0");
    assert!(engine.containers().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn without_the_agents_directory_the_launch_fails_and_ends_its_executor() {
    let s = setup(false);
    let engine = fake(&s, Executor::Runs { pid: 777 });
    let e = launch(&s, &engine, no_signals()).await.unwrap_err();
    assert_eq!(e.failure, Failure::Software);
    assert!(e.to_string().contains("does not exist"), "{e}");
    let calls = engine.calls();
    assert!(
        calls.contains(&"signal 777 SIGKILL".to_string()),
        "{calls:?}"
    );
    assert_eq!(calls.last().unwrap(), "remove id-0");
    assert!(!s.run.forked_pid_path().parent().unwrap().exists());
}

#[tokio::test(flavor = "current_thread")]
async fn without_checkpointing_nothing_is_written() {
    let mut s = setup(true);
    s.plan.checkpointing = false;
    let engine = fake(&s, Executor::Runs { pid: 777 });
    let engine_ref = &engine;
    let exit_later = async {
        // The launch is under way once the sibling started; then the executor finishes.
        until("the launch asked for a sweep", None, || {
            engine_ref.calls().iter().any(|c| c.starts_with("sweep"))
        })
        .await;
        engine_ref.exit("id-0", 0);
    };
    let (status, ()) = tokio::join!(launch(&s, &engine, no_signals()), exit_later);
    assert_eq!(status.unwrap(), 0);
    assert_eq!(forked_pid(&s), AGENTS_PID);
}

#[tokio::test(flavor = "current_thread")]
async fn a_missing_image_is_pulled_once_then_created() {
    let s = setup(true);
    let engine = fake(&s, Executor::ExitsAtOnce { code: 0 });
    *engine.image_missing.borrow_mut() = true;
    assert_eq!(launch(&s, &engine, no_signals()).await.unwrap(), 0);
    assert_eq!(
        engine.calls()[..3],
        [
            "create executor-mesos-C-1",
            "pull img",
            "create executor-mesos-C-1"
        ]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_running_leftover_of_the_run_is_adopted_a_stopped_one_replaced_and_a_strangers_refused() {
    let s = setup(true);
    let leftover = |status: Status, labels: HashMap<String, String>| Container {
        id: "old".into(),
        name: s.spec.name.clone(),
        labels,
        status,
        pid: (status == Status::RUNNING).then_some(555),
        code: None,
    };
    let engine = fake(&s, Executor::Runs { pid: 777 });
    engine.add_container(leftover(Status::RUNNING, s.spec.labels.clone()));
    let signals = once_checkpointed(s.run.forked_pid_path(), 555, Signal::SIGTERM);
    assert_eq!(launch(&s, &engine, signals).await.unwrap(), 143);
    let calls = engine.calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("start")),
        "no second executor: {calls:?}"
    );
    assert!(
        calls.contains(&"wait old not-running".to_string()),
        "{calls:?}"
    );

    let engine = fake(&s, Executor::ExitsAtOnce { code: 4 });
    engine.add_container(leftover(Status::EXITED, s.spec.labels.clone()));
    assert_eq!(launch(&s, &engine, no_signals()).await.unwrap(), 4);
    assert!(engine
        .calls()
        .contains(&"remove executor-mesos-C-1".to_string()));

    let stranger = fake(&s, Executor::Runs { pid: 777 });
    stranger.add_container(leftover(Status::RUNNING, HashMap::new()));
    let e = launch(&s, &stranger, no_signals()).await.unwrap_err();
    assert!(e.to_string().contains("was not started by the shim"), "{e}");
    assert!(
        !stranger
            .calls()
            .iter()
            .any(|c| c.starts_with("remove") || c.starts_with("kill")),
        "nothing done to a stranger"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_signal_before_the_sibling_exists_calls_the_launch_off() {
    let s = setup(true);
    let engine = fake(&s, Executor::Runs { pid: 777 });
    let signals = Box::pin(stream::iter([Signal::SIGTERM]));
    assert_eq!(launch(&s, &engine, signals).await.unwrap(), 143);
    assert!(engine.containers().is_empty());
    assert!(!engine.calls().iter().any(|c| c.starts_with("create")));
}

/// A create went through, and the daemon hangs before the start: the signal still calls the
/// launch off, and the sibling this shim made is removed.
#[tokio::test(flavor = "current_thread")]
async fn a_signal_after_the_create_removes_what_the_launch_made() {
    let s = setup(true);
    let mut engine = fake(&s, Executor::Runs { pid: 777 });
    engine.wait_hangs = true;
    let engine_ref = &engine;
    let signals = Box::pin(stream::once(async move {
        until("the launch asked for a wait", None, || {
            engine_ref.calls().iter().any(|c| c.starts_with("wait"))
        })
        .await;
        Signal::SIGINT
    }));
    assert_eq!(launch(&s, &engine, signals).await.unwrap(), 130);
    assert!(engine.containers().is_empty(), "{:?}", engine.calls());
    assert!(!engine.calls().iter().any(|c| c.starts_with("start")));
}

#[tokio::test(flavor = "current_thread")]
async fn a_rewrite_of_forked_pid_within_the_guard_is_undone() {
    let s = setup(true);
    let engine = fake(&s, Executor::Runs { pid: 777 });
    let path = s.run.forked_pid_path();
    let signals = Box::pin(stream::once(async move {
        until("forked.pid names the sibling", LOOK, || names(&path, "777")).await;
        std::fs::write(path.with_file_name("tmp"), "1").unwrap();
        std::fs::rename(path.with_file_name("tmp"), &path).unwrap();
        until("forked.pid names the sibling", LOOK, || names(&path, "777")).await;
        Signal::SIGTERM
    }));
    assert_eq!(launch(&s, &engine, signals).await.unwrap(), 143);
    assert_eq!(forked_pid(&s), "777");
}

/// Where the daemon removes the sibling by itself, the shim leaves without asking it again.
#[tokio::test(flavor = "current_thread")]
async fn an_auto_removed_sibling_is_left_to_the_daemon() {
    let mut s = setup(true);
    s.spec.auto_remove = true;
    let engine = fake(&s, Executor::Runs { pid: 777 });
    let signals = once_checkpointed(s.run.forked_pid_path(), 777, Signal::SIGTERM);
    assert_eq!(launch(&s, &engine, signals).await.unwrap(), 143);
    let calls = engine.calls();
    assert!(!calls.iter().any(|c| c.starts_with("remove")), "{calls:?}");
    assert!(
        !calls.iter().any(|c| c.starts_with("wait id-0 not-running")),
        "{calls:?}"
    );
}
