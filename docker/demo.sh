#!/bin/sh
# The whole story in one command, on any machine with Docker and no registry: builds the images
# it needs locally, starts a stand-in agent container with the shim, launches an executor,
# SIGKILLs the agent container, starts a new one that finds the executor through forked.pid;
# then the same for a docker task (the docker containerizer's mesos-docker-executor and its task
# container); then cleans up. Every line it prints is something it checked (but the pages it
# names at the end, to read next); the first check that does not hold ends it with status 1.
#
#   sh docker/demo.sh            # builds the release binary first
#   SHIM_BINARY=path sh docker/demo.sh
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
shim=${SHIM_BINARY:-}
if [ -z "$shim" ]; then
  (cd "$repo" && cargo build --release --locked -q) || { echo "demo: FAILED: cargo build --release (its error is above)" >&2; exit 1; }
  shim=$repo/target/x86_64-unknown-linux-gnu/release/mesos-executor-shim
fi
shim=$(cd "$(dirname "$shim")" && pwd)/$(basename "$shim")

say() {
  step="$*"
  printf '\n== %s\n' "$*"
}
reported=no step="starting"
fail() {
  reported=yes
  echo "demo: FAILED: $*" >&2
  exit 1
}
# must WHAT COMMAND...: runs COMMAND; when it fails, the demo fails naming WHAT, the command and
# what it printed. Its standard output is passed on.
must() {
  what=$1
  shift
  must_err=$(mktemp)
  status=0
  "$@" 2>"$must_err" || status=$?
  if [ "$status" = 0 ]; then
    rm -f "$must_err"
    return 0
  fi
  printf 'demo: command (status %s): %s\n' "$status" "$*" >&2
  sed 's/^/demo:   /' "$must_err" >&2
  rm -f "$must_err"
  fail "$what"
}
# wait_for SECONDS WHAT COMMAND...: polls COMMAND until it succeeds, or fails the demo.
wait_for() {
  limit=$(($1 * 5)) what=$2 i=0
  shift 2
  until "$@"; do
    i=$((i + 1))
    [ "$i" -lt "$limit" ] || fail "$what"
    sleep 0.2
  done
}
work=$(mktemp -d /tmp/mesos-executor-shim-demo.XXXXXX)
cid=demo-$(basename "$work" | tr -cd 'A-Za-z0-9')
agent1=demo-agent-1-$cid
agent2=demo-agent-2-$cid
dcid=$cid-docker
dagent=demo-agent-docker-$cid
cleanup() {
  status=$?
  if [ "$status" != 0 ] && [ "$reported" = no ]; then
    echo "demo: FAILED with status $status during: $step (its error is above)" >&2
  fi
  docker rm -f "$agent1" "$agent2" "$dagent" "executor-mesos-$cid" "executor-mesos-$dcid" "mesos-$dcid" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

say "building the demo images locally"
must "building the demo images" sh "$repo/docker/test/build-images.sh" "$shim"

sibling_pid() { # NAME: the host pid of a running container, or nothing
  docker inspect -f '{{if .State.Running}}{{.State.Pid}}{{end}}' "$1" 2>/dev/null || true
}
alive() { kill -0 "$1" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }
lines() { grep -c "$1" "$2" 2>/dev/null || true; }
state() { docker inspect -f '{{.State.Status}}' "$1" 2>/dev/null || echo removed; }

say "starting agent container $agent1; it launches executor app.demo in container $cid"
must "starting agent container $agent1" docker run -d --name "$agent1" --pid=host --net=host \
  -v /var/run/docker.sock:/var/run/docker.sock -v "$work:$work" \
  -v "$shim:/usr/libexec/mesos/mesos-executor:ro" -v "$shim:/usr/local/bin/mesos-executor-shim:ro" \
  mesos-executor-shim-test/agent:latest \
  /standin-agent.sh launch "$work" S-demo F-demo app.demo "$cid" --launcher_dir=/usr/libexec/mesos >/dev/null
forked=$work/meta/slaves/S-demo/frameworks/F-demo/executors/app.demo/runs/$cid/pids/forked.pid
sandbox=$work/slaves/S-demo/frameworks/F-demo/executors/app.demo/runs/$cid
checkpointed() { # the sibling runs, and forked.pid names its pid
  pid=$(sibling_pid "executor-mesos-$1")
  [ -n "$pid" ] && [ "$pid" != 0 ] && [ "$(cat "$2" 2>/dev/null)" = "$pid" ]
}
wait_for 30 "the executor was not checkpointed; sandbox stderr: $(cat "$sandbox/stderr" 2>/dev/null)" \
  checkpointed "$cid" "$forked"
pid=$(cat "$forked")
echo "forked.pid = $pid = host pid of sibling container executor-mesos-$cid"
listing=$(must "running ps in the agent container" docker exec "$agent1" /usr/local/bin/mesos-executor-shim ps)
printf '%s\n' "$listing" | sed -n "1p;/$cid/p"
printf '%s\n' "$listing" | grep "^$cid " | grep -q matches || fail "ps does not show forked.pid matching"

say "SIGKILL of the agent container"
must "killing the agent container" docker kill --signal KILL "$agent1" >/dev/null
wait_for 20 "the agent container did not stop" sh -c "[ \"\$(docker inspect -f '{{.State.Status}}' $agent1)\" = exited ]"
echo "agent container: $(state "$agent1")"
alive "$pid" || fail "the executor died with its agent container"
echo "executor pid $pid: alive"
before=$(lines '^tick' "$sandbox/stdout")
wait_for 10 "the executor's output stopped growing" sh -c "[ \$(grep -c '^tick' '$sandbox/stdout') -ge $((before + 3)) ]"
echo "executor output in the sandbox: $before lines, then $(lines '^tick' "$sandbox/stdout")"

say "a new agent container recovers: it reads forked.pid and checks the pid"
report=$(docker run --rm --name "$agent2" --pid=host -v "$work:$work" mesos-executor-shim-test/agent:latest \
  /standin-agent.sh recover "$work") || fail "recovery found the executor dead: $report"
echo "$report"
[ "$report" = "alive $cid $pid" ] || fail "recovery did not find pid $pid"

say "SIGTERM to the executor"
autoremove=$(must "inspecting the sibling" docker inspect -f '{{.HostConfig.AutoRemove}}' "executor-mesos-$cid")
must "sending SIGTERM to the sibling" docker kill --signal TERM "executor-mesos-$cid" >/dev/null
wait_for 20 "the executor did not exit on SIGTERM" sh -c "! kill -0 $pid 2>/dev/null"
grep -q TERM "$sandbox/executor.signals" || fail "the executor never saw SIGTERM"
echo "the executor exited on SIGTERM; its sibling's init recorded $(cat "$sandbox/.mesos-executor-shim.exit")"
if [ "$autoremove" = true ]; then
  wait_for 20 "the daemon did not remove the exited sibling" sh -c "! docker inspect executor-mesos-$cid >/dev/null 2>&1"
  echo "its container was removed by the daemon (auto-remove)"
else
  # live-restore on an Engine before 24.0.8: no auto-remove, and its shim is gone: gc removes it.
  wait_for 20 "the sibling did not stop" sh -c "[ \"\$(docker inspect -f '{{.State.Status}}' executor-mesos-$cid)\" = exited ]"
  must "running gc" "$shim" gc --label "io.mesos-executor-shim.container-id=$cid" >/dev/null
  [ "$(state "executor-mesos-$cid")" = removed ] || fail "gc did not remove the exited sibling"
  echo "its container, stopped with its shim gone, was removed by gc"
fi

say "a docker task: agent container $dagent runs the docker containerizer, the shim bind-mounted over both executors"
dwork=$work/docker-agent
mkdir -p "$dwork"
must "starting agent container $dagent" docker run -d --name "$dagent" --pid=host --net=host \
  -v /var/run/docker.sock:/var/run/docker.sock -v "$work:$work" \
  -v "$shim:/usr/libexec/mesos/mesos-executor:ro" -v "$shim:/usr/libexec/mesos/mesos-docker-executor:ro" \
  -e CONTAINERIZER=docker -e TASK_IMAGE=mesos-executor-shim-test/agent:latest \
  -e 'TASK_COMMAND=i=0; while :; do echo task tick $i; i=$((i+1)); sleep 0.2; done' \
  mesos-executor-shim-test/agent-docker:latest \
  /standin-agent.sh launch "$dwork" S-demo F-demo web.demo "$dcid" >/dev/null
dmeta=$dwork/meta/slaves/S-demo/frameworks/F-demo/executors/web.demo/runs/$dcid/pids
dsandbox=$dwork/slaves/S-demo/frameworks/F-demo/executors/web.demo/runs/$dcid
wait_for 30 "the docker executor was not checkpointed; sandbox stderr: $(cat "$dsandbox/stderr" 2>/dev/null)" \
  sh -c "[ -s '$dmeta/libprocess.pid' ] && [ \"\$(cat '$dmeta/forked.pid')\" = \"\$(docker inspect -f '{{if .State.Running}}{{.State.Pid}}{{end}}' executor-mesos-$dcid)\" ]"
dpid=$(cat "$dmeta/forked.pid")
echo "forked.pid = $dpid = host pid of sibling executor-mesos-$dcid; libprocess.pid = $(cat "$dmeta/libprocess.pid")"
wait_for 30 "the task container does not run" sh -c "[ \"\$(docker inspect -f '{{.State.Status}}' mesos-$dcid 2>/dev/null)\" = running ]"
echo "task container mesos-$dcid: running"
must "killing the docker agent container" docker kill --signal KILL "$dagent" >/dev/null
wait_for 20 "the agent container did not stop" sh -c "[ \"\$(docker inspect -f '{{.State.Status}}' $dagent)\" = exited ]"
echo "agent container: $(state "$dagent")"
alive "$dpid" || fail "the docker executor died with its agent container"
echo "docker executor pid $dpid: alive"
before=$(lines '^task tick' "$dsandbox/stdout")
wait_for 10 "the task's output stopped growing" sh -c "[ \$(grep -c '^task tick' '$dsandbox/stdout') -ge $((before + 3)) ]"
echo "task output in the sandbox: $before lines, then $(lines '^task tick' "$dsandbox/stdout")"

say "a new docker containerizer recovers: forked.pid alive and the libprocess address answering"
report=$(docker run --rm --pid=host --net=host -e CONTAINERIZER=docker -v "$work:$work" \
  mesos-executor-shim-test/agent:latest /standin-agent.sh recover "$dwork") \
  || fail "the docker containerizer found its executor dead: $report"
echo "$report"
[ "$report" = "alive $dcid $dpid" ] || fail "recovery did not find pid $dpid"
must "sending SIGTERM to the docker executor's sibling" docker kill --signal TERM "executor-mesos-$dcid" >/dev/null
wait_for 30 "the task container did not stop on SIGTERM" sh -c "[ \"\$(docker inspect -f '{{.State.Status}}' mesos-$dcid 2>/dev/null || echo removed)\" != running ]"
echo "the docker executor stopped its task on SIGTERM: task container $(state "mesos-$dcid")"

say "every check held; where to look next"
cat <<'NEXT'
README.md              the two test commands, the install in three steps
docs/install.md        installing the shim into your agent image, or bind-mounting it
docs/operating.md      a deployment to copy (docker/compose.yml, gc beside the agent), doctor, ps, gc
docs/configuration.md  the one configuration file and its keys
docs/faults.md         Docker daemon restarts (run dockerd with live-restore), known limits
docs/README.md         every page
NEXT
