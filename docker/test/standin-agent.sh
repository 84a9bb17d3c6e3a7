#!/bin/sh
# Stand-in for a dockerized Mesos agent, for tests and the demo. Run in a container with
# --pid=host, the Docker socket and the work_dir mounted at the same path.
#
#   standin-agent.sh launch WORK_DIR AGENT_ID FRAMEWORK_ID EXECUTOR_ID CONTAINER_ID [EXECUTOR_ARGS...]
#       Lays out the run as Mesos does, forks LAUNCHER_DIR/mesos-executor in a session of its own
#       (the posix launcher's setsid) with argv[0] the bare executor name (as Mesos passes it),
#       the MESOS_* environment, the sandbox as its working directory and the sandbox's
#       stdout/stderr, checkpoints forked.pid by temp file and rename, waits for it, records its
#       status and marks the run completed. Then it stays alive, as an agent does after one of its
#       executors exited. Its own records (standin.launched, standin.status) go to
#       WORK_DIR/standin/CONTAINER_ID, never to meta/.
#       AGENT_GENERATION=1.x (default): as the Mesos containerizer, it forks the launch helper
#         LAUNCHER_DIR/mesos-containerizer (standin-launch-helper.sh), which forks the executor and
#         stays its parent; forked.pid names the helper. The executor gets only MESOS_*, LIBPROCESS_*, PATH,
#         EXECUTOR_ENVIRONMENT (space-separated K=V, the operator's --executor_environment_variables)
#         and TASK_ENVIRONMENT (space-separated K=V, the task's CommandInfo.environment, which Mesos
#         copies into the command executor's environment and which wins over the agent's own
#         MESOS_* as in containerizer.cpp), and forked.pid is written before the executor starts.
#       AGENT_GENERATION=0.2x: the executor inherits the agent's whole environment plus
#         TASK_ENVIRONMENT, and forked.pid is written CHECKPOINT_DELAY seconds (default 1) after
#         the launch.
#       CHECKPOINT=0 launches without checkpointing: as Mesos, no meta run directory at all.
#       EXECUTOR_NETWORK=own runs the executor in a network namespace of its own, as the
#         network/cni isolator does (the launch helper unshares it; CAP_SYS_ADMIN needed).
#       EXECUTOR_USER=NAME runs the executor as that user, as the agent's --switch_user does: the
#         sandbox is chowned to it, and the launch helper switches to it before the exec.
#       CONTAINER_LOGGER=pipe (default sandbox): as a container logger other than the sandbox's
#         (logrotate, journald), the executor's stdout and stderr are pipes to two readers in the
#         agent container, which append what they read to WORK_DIR/standin/CONTAINER_ID/
#         logger.stdout and logger.stderr; they die with the agent container.
#       LAUNCHER_DIR (default /usr/libexec/mesos): where the executors are.
#       CONTAINERIZER=docker (default mesos): as the docker containerizer, forks
#         LAUNCHER_DIR/mesos-docker-executor with its flags (--container=mesos-<CID> --docker=docker
#         --docker_socket=DOCKER_SOCKET (default /var/run/docker.sock) --sandbox_directory=...
#         --mapped_directory=/mnt/mesos/sandbox --launcher_dir=... --stop_timeout=0ns) instead of
#         the extra arguments, hands it the task TASK_IMAGE/TASK_COMMAND (the file standin.task in
#         the sandbox), and checkpoints pids/libprocess.pid once the executor reports its address.
#       LAUNCHER=linux (default posix): as the linux launcher, creates the cgroup
#         CGROUPS_ROOT/CONTAINER_ID (default root: mesos) in the freezer, memory and cpu hierarchies
#         under /sys/fs/cgroup, sets MEMORY_LIMIT (bytes) on it if given, and moves the forked
#         process into it before it execs the executor. Needs the host's /sys/fs/cgroup mounted rw.
#   standin-agent.sh destroy-posix WORK_DIR CONTAINER_ID
#       The posix launcher's destroy, as a live agent does it (a kill, a registration timeout):
#       SIGKILLs the session of the pid it forked (standin.launched) and waits for it to die.
#       Run in the agent container (docker exec), whose launch process lives on.
#   standin-agent.sh destroy WORK_DIR CGROUPS_ROOT CONTAINER_ID
#       The linux launcher's destroy: freezes the container's freezer cgroup (nested cgroups
#       included), SIGKILLs every process in it and below, thaws it, then waits (bounded) for the
#       pid in forked.pid to die. Exits 0 when it died, 1 when it survived (a destroy that hangs).
#   standin-agent.sh recover WORK_DIR
#       What a restarted agent does: for the latest run of every executor not marked completed,
#       reads forked.pid and checks the pid is alive. With CONTAINERIZER=docker, as the docker
#       containerizer: only a run with a libprocess.pid whose address accepts a TCP connection
#       has its forked.pid checked; any other is dead. Prints "alive|dead CONTAINER_ID PID" per run;
#       exits 0 when all are alive, 1 when one is dead, 2 on an empty or unparsable forked.pid.
set -u
mode=$1
shift

checkpoint() { # FILE VALUE: as slave::state::checkpoint does
  dir=$(dirname "$1")
  mkdir -p "$dir"
  tmp=$(mktemp "$dir/XXXXXX")
  printf '%s' "$2" > "$tmp"
  mv "$tmp" "$1"
}

case "$mode" in
launch)
  work_dir=$1 agent_id=$2 framework_id=$3 executor_id=$4 container_id=$5
  shift 5
  runs=$work_dir/slaves/$agent_id/frameworks/$framework_id/executors/$executor_id/runs
  sandbox=$runs/$container_id
  meta=$work_dir/meta/slaves/$agent_id/frameworks/$framework_id/executors/$executor_id/runs/$container_id
  records=$work_dir/standin/$container_id
  mkdir -p "$sandbox" "$records"
  echo "$$" > "$records/agent.pid"
  ln -sfn "$container_id" "$runs/latest"
  if [ "${CHECKPOINT:-1}" = 1 ]; then
    mkdir -p "$meta/pids"
    ln -sfn "$container_id" "$(dirname "$meta")/latest"
  fi
  cd "$sandbox"
  set -- \
    MESOS_FRAMEWORK_ID="$framework_id" MESOS_EXECUTOR_ID="$executor_id" \
    MESOS_DIRECTORY="$sandbox" MESOS_SANDBOX="$sandbox" MESOS_SLAVE_ID="$agent_id" \
    MESOS_SLAVE_PID="slave(1)@127.0.0.1:5051" MESOS_CHECKPOINT="${CHECKPOINT:-1}" \
    MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=5secs MESOS_RECOVERY_TIMEOUT=15mins \
    LIBPROCESS_IP=127.0.0.1 LIBPROCESS_PORT=0 \
    -- "$@"
  MOVE_TO=
  if [ "${LAUNCHER:-posix}" = linux ]; then
    for c in freezer memory cpu; do
      cgroup=/sys/fs/cgroup/$c/${CGROUPS_ROOT:-mesos}/$container_id
      mkdir -p "$cgroup"
      MOVE_TO="$MOVE_TO $cgroup"
    done
    if [ -n "${MEMORY_LIMIT:-}" ]; then
      echo "$MEMORY_LIMIT" > "/sys/fs/cgroup/memory/${CGROUPS_ROOT:-mesos}/$container_id/memory.limit_in_bytes"
    fi
  fi
  export MOVE_TO
  launcher_dir=${LAUNCHER_DIR:-/usr/libexec/mesos}
  executor=$launcher_dir/mesos-executor
  if [ "${CONTAINERIZER:-mesos}" = docker ]; then
    executor=$launcher_dir/mesos-docker-executor
    set -- "$@" --container="mesos-$container_id" --docker=docker \
      --docker_socket="${DOCKER_SOCKET:-/var/run/docker.sock}" --sandbox_directory="$sandbox" \
      --mapped_directory=/mnt/mesos/sandbox --launcher_dir="$launcher_dir" --stop_timeout=0ns
    echo "${TASK_IMAGE:?TASK_IMAGE is not set} ${TASK_COMMAND:?TASK_COMMAND is not set}" > "$sandbox/standin.task"
    (
      until [ -s "$sandbox/executor.libprocess" ]; do sleep 0.1; done
      checkpoint "$meta/pids/libprocess.pid" "$(cat "$sandbox/executor.libprocess")"
    ) &
  fi
  generation=${AGENT_GENERATION:-1.x}
  helper=
  if [ "$generation" = "1.x" ] && [ "${CONTAINERIZER:-mesos}" = mesos ]; then
    helper="$launcher_dir/mesos-containerizer launch $records"
    [ "${EXECUTOR_NETWORK:-}" = own ] && helper="$helper --network=own"
    if [ -n "${EXECUTOR_USER:-}" ]; then
      chown -R "$EXECUTOR_USER" "$sandbox"
      helper="$helper --user=$EXECUTOR_USER"
    fi
  fi
  out=$sandbox/stdout err=$sandbox/stderr
  if [ "${CONTAINER_LOGGER:-sandbox}" = pipe ]; then
    out=$records/logger.stdout.pipe err=$records/logger.stderr.pipe
    mkfifo "$out" "$err"
    cat "$out" >> "$records/logger.stdout" &
    cat "$err" >> "$records/logger.stderr" &
  fi
  if [ "$generation" = "1.x" ]; then
    # shellcheck disable=SC2086
    setsid sh -c '
      for cgroup in $MOVE_TO; do echo $$ > "$cgroup/cgroup.procs"; done
      [ "$1" = 1 ] && { dir=$2; tmp=$(mktemp "$dir/XXXXXX"); printf "%s" "$$" > "$tmp"; mv "$tmp" "$dir/forked.pid"; }
      shift 2
      exec "$@"' sh "${CHECKPOINT:-1}" "$meta/pids" \
      $helper env -i PATH="$PATH" MESOS_AGENT_ID="$agent_id" TASK_ENVIRONMENT="${TASK_ENVIRONMENT:-}" ${EXECUTOR_ENVIRONMENT:-} \
      sh -c 'executor=$1; shift; while [ "$1" != -- ]; do export "$1"; shift; done; shift; tasks=${TASK_ENVIRONMENT:-}; unset TASK_ENVIRONMENT; for kv in $tasks; do export "$kv"; done; exec -a "${executor##*/}" "$executor" "$@"' sh "$executor" "$@" \
      > "$out" 2> "$err" &
    pid=$!
  else
    # shellcheck disable=SC2086
    setsid sh -c 'executor=$1; shift; while [ "$1" != -- ]; do export "$1"; shift; done; shift; tasks=${TASK_ENVIRONMENT:-}; unset TASK_ENVIRONMENT; for kv in $tasks; do export "$kv"; done; exec -a "${executor##*/}" "$executor" "$@"' sh "$executor" "$@" \
      > "$out" 2> "$err" &
    pid=$!
    sleep "${CHECKPOINT_DELAY:-1}"
    [ "${CHECKPOINT:-1}" = 1 ] && checkpoint "$meta/pids/forked.pid" "$pid"
  fi
  echo "$pid" > "$records/standin.launched"
  # Without a helper the executor is what the agent forked.
  [ -n "$helper" ] || echo "$pid" > "$records/standin.shim"
  echo "launched executor as pid $pid"
  wait "$pid"
  status=$?
  echo "$status" > "$records/standin.status"
  [ "${CHECKPOINT:-1}" = 1 ] && touch "$meta/executor.sentinel"
  echo "executor exited with status $status"
  # An agent lives on after one of its executors exited (same pid: the shim's init may watch it).
  exec sleep 2147483647
  ;;
destroy-posix)
  work_dir=$1 container_id=$2
  launched=$(cat "$work_dir/standin/$container_id/standin.launched")
  kill -9 "-$launched"
  i=0
  while kill -0 "$launched" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$launched/stat" 2>/dev/null)" != Z ]; do
    i=$((i + 1))
    [ "$i" -lt 100 ] || { echo "survived $container_id $launched"; exit 1; }
    sleep 0.1
  done
  echo "destroyed $container_id $launched"
  ;;
destroy)
  work_dir=$1 root=$2 container_id=$3
  freezer=/sys/fs/cgroup/freezer/$root/$container_id
  echo FROZEN > "$freezer/freezer.state"
  until grep -q FROZEN "$freezer/freezer.state"; do sleep 0.05; done
  for cgroup in $(find "$freezer" -type d); do
    for pid in $(cat "$cgroup/cgroup.procs"); do kill -9 "$pid"; done
  done
  echo THAWED > "$freezer/freezer.state"
  pid=$(cat "$work_dir"/meta/slaves/*/frameworks/*/executors/*/runs/"$container_id"/pids/forked.pid)
  i=0
  while kill -0 "$pid" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
    i=$((i + 1))
    if [ "$i" -ge 100 ]; then
      echo "survived $container_id $pid"
      exit 1
    fi
    sleep 0.1
  done
  echo "destroyed $container_id $pid"
  ;;
recover)
  work_dir=$1
  verdict=0
  for latest in "$work_dir"/meta/slaves/*/frameworks/*/executors/*/runs/latest; do
    [ -e "$latest" ] || continue
    run=$(dirname "$latest")/$(readlink "$latest")
    [ -e "$run/executor.sentinel" ] && continue
    pid=$(cat "$run/pids/forked.pid" 2>/dev/null)
    case "$pid" in
      '' | *[!0-9]*) echo "unparsable $(basename "$run") '$pid'"; exit 2 ;;
    esac
    reachable=yes
    if [ "${CONTAINERIZER:-mesos}" = docker ]; then
      address=$(cat "$run/pids/libprocess.pid" 2>/dev/null)
      hostport=${address#*@}
      if [ -z "$address" ] || ! nc -w 2 "${hostport%:*}" "${hostport##*:}" </dev/null 2>/dev/null; then
        reachable=no
      fi
    fi
    if [ "$reachable" = yes ] && kill -0 "$pid" 2>/dev/null; then
      echo "alive $(basename "$run") $pid"
    else
      echo "dead $(basename "$run") $pid"
      verdict=1
    fi
  done
  exit $verdict
  ;;
*)
  echo "usage: $0 launch|destroy-posix|destroy|recover ..." >&2
  exit 64
  ;;
esac
