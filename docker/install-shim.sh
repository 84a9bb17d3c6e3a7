#!/bin/sh
# Installs the shim binary $1 as $2/mesos-executor in an agent image, keeping the stock executor
# beside it as mesos-executor.real (what the shim runs inside the sibling container). Installed as
# a file named mesos-executor, never a symlink: the agent records the realpath of the executor
# and recognises a command executor by that name.
set -eu
shim=$1
dir=$2
if [ ! -x "$dir/mesos-executor" ]; then
  echo "install-shim: no stock executor at $dir/mesos-executor in the base image; pass MESOS_IMAGE=<a Mesos agent image>" >&2
  exit 1
fi
if [ -e "$dir/mesos-executor.real" ]; then
  echo "install-shim: $dir/mesos-executor.real exists: the base image already has the shim baked in" >&2
  exit 1
fi
mv "$dir/mesos-executor" "$dir/mesos-executor.real"
cp "$shim" "$dir/mesos-executor"
chmod 0755 "$dir/mesos-executor"
# The operator's commands (doctor, ps, gc) answer to any other name.
mkdir -p /usr/local/bin
ln -sf "$dir/mesos-executor" /usr/local/bin/mesos-executor-shim
rm -f "$shim"
