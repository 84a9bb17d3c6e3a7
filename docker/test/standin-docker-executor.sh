#!/bin/sh
# Stand-in for the stock mesos-docker-executor, for tests and the demo, doing what the docker
# containerizer's executor does that recovery depends on:
#   - takes the agent's flags (--container, --docker, --docker_socket, --sandbox_directory, ...);
#   - listens on a TCP port at LIBPROCESS_IP (its libprocess address) and reports that address to
#     the agent, which checkpoints it in pids/libprocess.pid (here: the file executor.libprocess in
#     the sandbox, which the stand-in agent picks up);
#   - runs the task (the sandbox's standin.task: an image, then the command) with a foreground
#     `docker run --name <--container> ...` through the socket and the docker CLI, so the task's
#     output comes through it, and exits with the task container's code;
#   - on SIGTERM stops the task container, as a shutdown does.
sandbox=${MESOS_DIRECTORY:?MESOS_DIRECTORY is not set}
# Each record appears whole (temp file and rename): tests read them as soon as they exist.
for a in "$0" "$@"; do printf '%s\n' "$a"; done > "$sandbox/executor.argv.tmp"
mv "$sandbox/executor.argv.tmp" "$sandbox/executor.argv"
env > "$sandbox/executor.env.tmp"
mv "$sandbox/executor.env.tmp" "$sandbox/executor.env"
container= docker_cli=docker socket=/var/run/docker.sock
for a in "$@"; do
  case "$a" in
    --container=*) container=${a#*=} ;;
    --docker=*) docker_cli=${a#*=} ;;
    --docker_socket=*) socket=${a#*=} ;;
  esac
done
[ -n "$container" ] || { echo "standin-docker-executor: no --container" >&2; exit 64; }
docker() { HOME=/tmp command "$docker_cli" -H "unix://$socket" "$@"; }

# The libprocess address: a port that this executor holds open for as long as it lives.
ip=${LIBPROCESS_IP:-127.0.0.1}
tries=0
while :; do
  port=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
  nc -ll -p "$port" -e /bin/true &
  listener=$!
  sleep 0.2
  kill -0 "$listener" 2>/dev/null && break
  tries=$((tries + 1))
  [ "$tries" -lt 20 ] || { echo "standin-docker-executor: no port to listen on" >&2; exit 70; }
done
trap 'kill "$listener" 2>/dev/null' EXIT
echo "executor(1)@$ip:$port" > "$sandbox/executor.libprocess.tmp"
mv "$sandbox/executor.libprocess.tmp" "$sandbox/executor.libprocess"

read -r image command < "$sandbox/standin.task"
trap 'echo TERM >> "$sandbox/executor.signals"; docker stop -t 2 "$container" >/dev/null' TERM
# In the background so that the trap runs while the task runs; its status is the task's.
docker run --name "$container" --net=host "$image" /bin/sh -c "$command" &
run=$!
while :; do
  wait "$run"
  status=$?
  # A trapped signal interrupts wait with 128+n while docker run goes on: wait again.
  kill -0 "$run" 2>/dev/null || break
done
exit "$status"
