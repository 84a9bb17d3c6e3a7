#!/bin/sh
# Installs the shim binary $1 as $2/mesos-executor and $2/mesos-docker-executor (where the base
# image has one) in an agent image, keeping each stock executor beside it as <name>.real (what
# the shim runs inside the sibling container). Installed as files under those names, never as
# symlinks: the agent records the realpath of the executor and recognises a command executor by
# its name.
set -eu
shim=$1
dir=$2
# Both executors the agent forks: mesos-executor (command tasks) and, where the image has it,
# mesos-docker-executor (docker containerizer tasks).
if [ ! -x "$dir/mesos-executor" ]; then
  echo "install-shim: no stock executor at $dir/mesos-executor in the base image; pass MESOS_IMAGE=<a Mesos agent image>" >&2
  exit 1
fi
for name in mesos-executor mesos-docker-executor; do
  [ -e "$dir/$name" ] || continue
  if [ -e "$dir/$name.real" ]; then
    echo "install-shim: $dir/$name.real exists: the base image already has the shim baked in" >&2
    exit 1
  fi
  mv "$dir/$name" "$dir/$name.real"
  cp "$shim" "$dir/$name"
  chmod 0755 "$dir/$name"
done
# The operator's commands (doctor, ps, gc) answer to any other name.
mkdir -p /usr/local/bin
ln -sf "$dir/mesos-executor" /usr/local/bin/mesos-executor-shim
rm -f "$shim"
