#!/bin/sh
# Stand-in for the stock mesos-executor, for tests and the demo: records how it was started in
# the sandbox (executor.argv, executor.env, and executor.context: its user, groups, capabilities
# and open-file limits), then prints a line every 0.2 s. Among the agent's flags it reads
# --exit_after=<lines>, --exit_code=<n>, --tick_interval=<secs>, --tick_stderr=1 (each tick goes
# to stderr too, as "err tick <i>"), --allocate_mb=<n> (holds n MiB
# before it starts ticking, as a task that needs memory would), --exit_on_file=<name> (exits once
# <sandbox>/<name> exists), --orphan_writer=1 (leaves a process behind that writes to stdout for
# ever, as a careless task would), and --probe_docker=<path:path...>
# (records in executor.docker, for each path, whether a task could reach a Docker daemon there:
# "absent", "socket" (no answer), or "reachable"); it ignores the rest, as the tests need no
# real task. It writes executor.pid once its signal handlers are set.
sandbox=${MESOS_DIRECTORY:?MESOS_DIRECTORY is not set}
# Each record appears whole (temp file and rename): tests read them as soon as they exist.
for a in "$0" "$@"; do printf '%s\n' "$a"; done > "$sandbox/executor.argv.tmp"
mv "$sandbox/executor.argv.tmp" "$sandbox/executor.argv"
env > "$sandbox/executor.env.tmp"
mv "$sandbox/executor.env.tmp" "$sandbox/executor.env"
# The container it runs in, as an isolator left it: user, groups, capabilities, open-file limits.
{ grep -E '^(Uid|Gid|Groups|CapEff|CapBnd|NoNewPrivs):' /proc/self/status; echo "nofile: $(ulimit -Sn) $(ulimit -Hn)"; } \
  > "$sandbox/executor.context.tmp"
mv "$sandbox/executor.context.tmp" "$sandbox/executor.context"
exit_after=-1
exit_code=0
tick_interval=0.2
allocate_mb=
tick_stderr=
probe=
exit_on_file=
orphan_writer=
for a in "$@"; do
  case "$a" in
    --exit_after=*) exit_after=${a#*=} ;;
    --exit_code=*) exit_code=${a#*=} ;;
    --tick_interval=*) tick_interval=${a#*=} ;;
    --allocate_mb=*) allocate_mb=${a#*=} ;;
    --tick_stderr=*) tick_stderr=${a#*=} ;;
    --probe_docker=*) probe=${a#*=} ;;
    --exit_on_file=*) exit_on_file=${a#*=} ;;
    --orphan_writer=*) orphan_writer=${a#*=} ;;
  esac
done
if [ -n "$probe" ]; then
  echo "$probe" | tr ':' '\n' | while read -r path; do
    if [ ! -S "$path" ]; then
      echo "$path absent"
    elif command -v docker >/dev/null && HOME=/tmp docker -H "unix://$path" version >/dev/null 2>&1; then
      echo "$path reachable"
    else
      echo "$path socket"
    fi
  done > "$sandbox/executor.docker"
fi
trap 'echo TERM >> "$sandbox/executor.signals"; exit 143' TERM
trap 'echo USR1 >> "$sandbox/executor.signals"' USR1
# Ready for signals: as a real executor, it could not handle one before its handlers were set.
echo $$ > "$sandbox/executor.pid.tmp"
mv "$sandbox/executor.pid.tmp" "$sandbox/executor.pid"
if [ -n "$allocate_mb" ]; then
  echo "allocating $allocate_mb MiB"
  held=$(head -c $((allocate_mb * 1048576)) /dev/zero | tr '\0' x)
  echo "allocated ${#held} bytes"
fi
i=0
while [ "$exit_after" -lt 0 ] || [ "$i" -lt "$exit_after" ]; do
  echo "tick $i"
  [ -z "$tick_stderr" ] || echo "err tick $i" >&2
  i=$((i + 1))
  [ -z "$exit_on_file" ] || [ ! -e "$sandbox/$exit_on_file" ] || break
  sleep "$tick_interval"
done
if [ -n "$orphan_writer" ]; then
  ( while :; do echo orphan; done ) &
fi
exit "$exit_code"
