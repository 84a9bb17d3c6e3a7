#!/bin/sh
# The whole story in one command, on any machine with Docker and no registry:
# builds the images it needs locally, starts a stand-in agent container with the shim,
# launches an executor, SIGKILLs the agent container, starts a new one, shows the executor still
# running and found through forked.pid; then the same for a docker task (the docker
# containerizer's mesos-docker-executor and its task container); then cleans up.
#
#   sh docker/demo.sh            # builds the release binary first
#   SHIM_BINARY=path sh docker/demo.sh
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
shim=${SHIM_BINARY:-}
if [ -z "$shim" ]; then
  (cd "$repo" && cargo build --release --locked -q)
  shim=$repo/target/x86_64-unknown-linux-gnu/release/mesos-executor-shim
fi
shim=$(cd "$(dirname "$shim")" && pwd)/$(basename "$shim")

say() { printf '\n== %s\n' "$*"; }
work=$(mktemp -d /tmp/mesos-executor-shim-demo.XXXXXX)
cid=demo-$(basename "$work" | tr -cd 'A-Za-z0-9')
agent1=demo-agent-1-$cid
agent2=demo-agent-2-$cid
dcid=$cid-docker
dagent=demo-agent-docker-$cid
cleanup() {
  docker rm -f "$agent1" "$agent2" "$dagent" "executor-mesos-$cid" "executor-mesos-$dcid" "mesos-$dcid" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

say "building the demo images locally"
sh "$repo/docker/test/build-images.sh" "$shim"

agent() { # NAME ARGS...: an agent container as operators run it, the shim bind-mounted
  name=$1
  shift
  docker run -d --name "$name" --pid=host --net=host \
    -v /var/run/docker.sock:/var/run/docker.sock -v "$work:$work" \
    -v "$shim:/usr/libexec/mesos/mesos-executor:ro" -v "$shim:/usr/local/bin/mesos-executor-shim:ro" \
    mesos-executor-shim-test/agent:latest "$@" >/dev/null
}

say "starting agent container $agent1; it launches executor app.demo in container $cid"
agent "$agent1" /standin-agent.sh launch "$work" S-demo F-demo app.demo "$cid" --launcher_dir=/usr/libexec/mesos
forked=$work/meta/slaves/S-demo/frameworks/F-demo/executors/app.demo/runs/$cid/pids/forked.pid
sandbox=$work/slaves/S-demo/frameworks/F-demo/executors/app.demo/runs/$cid
i=0
checkpointed() { # the sibling runs, and forked.pid names its (non-zero) pid
  sibling=$(docker inspect -f '{{if .State.Running}}{{.State.Pid}}{{end}}' "executor-mesos-$cid" 2>/dev/null) || return 1
  [ -n "$sibling" ] && [ "$sibling" != 0 ] && [ "$(cat "$forked" 2>/dev/null)" = "$sibling" ]
}
until checkpointed; do
  i=$((i + 1))
  [ "$i" -lt 150 ] || { echo "demo: the executor was not checkpointed; agent log:"; docker logs "$agent1"; cat "$sandbox/stderr"; exit 1; }
  sleep 0.2
done
pid=$(cat "$forked")
echo "forked.pid = $pid = host pid of sibling container executor-mesos-$cid"
listing=$(docker exec "$agent1" /usr/local/bin/mesos-executor-shim ps)
printf '%s\n' "$listing" | sed -n "1p;/$cid/p"

say "SIGKILL of the agent container"
docker kill --signal KILL "$agent1" >/dev/null
sleep 1
echo "agent container: $(docker inspect -f '{{.State.Status}}' "$agent1")"
echo "executor pid $pid: $(if kill -0 "$pid" 2>/dev/null; then echo alive; else echo DEAD; fi)"
before=$(wc -l <"$sandbox/stdout")
sleep 1
echo "executor output in the sandbox: $before lines, one second later $(wc -l <"$sandbox/stdout")"

say "a new agent container recovers: it reads forked.pid and checks the pid"
docker run --rm --name "$agent2" --pid=host -v "$work:$work" mesos-executor-shim-test/agent:latest \
  /standin-agent.sh recover "$work"

say "SIGTERM to the executor"
docker kill --signal TERM "executor-mesos-$cid" >/dev/null
i=0
while docker inspect "executor-mesos-$cid" >/dev/null 2>&1; do
  i=$((i + 1))
  [ "$i" -lt 50 ] || break
  sleep 0.2
done
echo "the executor exited on SIGTERM and its container was removed by the daemon"

say "a docker task: agent container $dagent runs the docker containerizer, the shim bind-mounted over both executors"
dwork=$work/docker-agent
mkdir -p "$dwork"
docker run -d --name "$dagent" --pid=host --net=host \
  -v /var/run/docker.sock:/var/run/docker.sock -v "$work:$work" \
  -v "$shim:/usr/libexec/mesos/mesos-executor:ro" -v "$shim:/usr/libexec/mesos/mesos-docker-executor:ro" \
  -e CONTAINERIZER=docker -e TASK_IMAGE=mesos-executor-shim-test/agent:latest \
  -e 'TASK_COMMAND=i=0; while :; do echo task tick $i; i=$((i+1)); sleep 0.2; done' \
  mesos-executor-shim-test/agent-docker:latest \
  /standin-agent.sh launch "$dwork" S-demo F-demo web.demo "$dcid" >/dev/null
dmeta=$dwork/meta/slaves/S-demo/frameworks/F-demo/executors/web.demo/runs/$dcid/pids
dsandbox=$dwork/slaves/S-demo/frameworks/F-demo/executors/web.demo/runs/$dcid
i=0
until [ -s "$dmeta/libprocess.pid" ] && [ "$(cat "$dmeta/forked.pid" 2>/dev/null)" = \
  "$(docker inspect -f '{{if .State.Running}}{{.State.Pid}}{{end}}' "executor-mesos-$dcid" 2>/dev/null)" ]; do
  i=$((i + 1))
  [ "$i" -lt 150 ] || { echo "demo: the docker executor was not checkpointed; agent log:"; docker logs "$dagent"; cat "$dsandbox/stderr"; exit 1; }
  sleep 0.2
done
dpid=$(cat "$dmeta/forked.pid")
echo "forked.pid = $dpid = host pid of sibling executor-mesos-$dcid; libprocess.pid = $(cat "$dmeta/libprocess.pid")"
echo "task container mesos-$dcid: $(docker inspect -f '{{.State.Status}}' "mesos-$dcid")"
docker kill --signal KILL "$dagent" >/dev/null
sleep 1
echo "agent container: $(docker inspect -f '{{.State.Status}}' "$dagent")"
echo "docker executor pid $dpid: $(if kill -0 "$dpid" 2>/dev/null; then echo alive; else echo DEAD; fi)"
before=$(grep -c '^task tick' "$dsandbox/stdout")
sleep 1
echo "task output in the sandbox: $before lines, one second later $(grep -c '^task tick' "$dsandbox/stdout")"
say "a new docker containerizer recovers: forked.pid alive and the libprocess address answering"
docker run --rm --pid=host --net=host -e CONTAINERIZER=docker -v "$work:$work" mesos-executor-shim-test/agent:latest \
  /standin-agent.sh recover "$dwork"
docker kill --signal TERM "executor-mesos-$dcid" >/dev/null
echo "the docker executor stops its task on SIGTERM"
