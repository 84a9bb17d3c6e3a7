#!/bin/sh
# Stand-in for the Mesos containerizer's launch helper, `mesos-containerizer launch` (Mesos 1.x,
# src/slave/containerizer/mesos/launch.cpp): the agent forks it (and checkpoints its pid in
# forked.pid); it forks the executor and stays its parent, in the same session, passes on the
# signals it gets, waits for the executor, records its exit status and exits with it. Installed
# as LAUNCHER_DIR/mesos-containerizer, so that its command name is the real helper's.
#   mesos-containerizer launch RECORDS [--network=own] [--user=NAME] COMMAND...
#       RECORDS: where it writes standin.shim (the executor's pid) and helper.status.
#       --network=own: the executor runs in a network namespace of its own, as the network/cni
#         isolator's (needs CAP_SYS_ADMIN in the agent container).
#       --user: the user it switches to before the exec (the agent's --switch_user).
[ "${1:-}" = launch ] || { echo "usage: $0 launch RECORDS [--network=own] [--user=NAME] COMMAND..." >&2; exit 64; }
records=$2
shift 2
network= user=
while :; do
  case "${1:-}" in
  --network=own) network=own; shift ;;
  --user=*) user=${1#--user=}; shift ;;
  *) break ;;
  esac
done
# shellcheck disable=SC2016
[ -z "$user" ] || set -- su -s /bin/sh -c 'exec "$0" "$@"' -- "$user" "$@"
[ -z "$network" ] || set -- unshare -n "$@"
"$@" &
child=$!
echo "$child" > "$records/standin.shim"
for sig in TERM INT HUP QUIT USR1 USR2; do
  # shellcheck disable=SC2064
  trap "kill -$sig $child 2>/dev/null" "$sig"
done
while :; do
  wait "$child"
  status=$?
  # A trapped signal ends the wait while the executor still runs: wait again.
  [ -e "/proc/$child" ] || break
done
echo "$status" > "$records/helper.status"
exit "$status"
