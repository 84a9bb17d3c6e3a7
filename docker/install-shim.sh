#!/bin/sh
# Lays out, under the empty directory $3, what baking the shim binary $1 into this agent image
# changes: $2/mesos-executor and $2/mesos-docker-executor (where the image has one) as the shim,
# each stock executor beside it as <name>.real (what the shim runs inside the sibling container),
# and /usr/local/bin/mesos-executor-shim for the operator's commands. The Dockerfiles copy that
# tree over the agent image in one layer, so that no layer holds a copy of the shim that the
# image does not show (a COPY to /tmp and a later rm would leave one).
# The shim is installed as files under the executors' names, never as symlinks: the agent records
# the realpath of the executor and recognises a command executor by its name. The second name is
# a hard link to the first: one copy of the binary in the layer.
set -eu
shim=$1
dir=$2
out=$3
if [ ! -x "$dir/mesos-executor" ]; then
  echo "install-shim: no stock executor at $dir/mesos-executor in the base image; pass MESOS_IMAGE=<a Mesos agent image>" >&2
  exit 1
fi
mkdir -p "$out$dir" "$out/usr/local/bin"
installed=
# Both executors the agent forks: mesos-executor (command tasks) and, where the image has it,
# mesos-docker-executor (docker containerizer tasks).
for name in mesos-executor mesos-docker-executor; do
  [ -e "$dir/$name" ] || continue
  if [ -e "$dir/$name.real" ]; then
    echo "install-shim: $dir/$name.real exists: the base image already has the shim baked in" >&2
    exit 1
  fi
  cp -P -p "$dir/$name" "$out$dir/$name.real"
  if [ -z "$installed" ]; then
    installed=$out$dir/$name
    cp "$shim" "$installed"
    chmod 0755 "$installed"
  else
    ln "$installed" "$out$dir/$name"
  fi
done
# The operator's commands (doctor, ps, gc) answer to any other name.
ln -s "$dir/mesos-executor" "$out/usr/local/bin/mesos-executor-shim"
