#!/bin/sh
# Builds, on the local daemon and without any registry, the images the tests and the demo use:
#   mesos-executor-shim-test/agent        busybox, the stand-in agent, the stand-in executor as the
#                                         stock /usr/libexec/mesos/mesos-executor, and the stand-in
#                                         launch helper as mesos-containerizer beside it
#   mesos-executor-shim-test/agent-baked  the same, with the shim baked in by
#                                         Dockerfile.mesos-slave-prebuilt
#   mesos-executor-shim-test/agent-docker the agent image plus the docker CLI and the stand-in
#                                         mesos-docker-executor, both executors also under
#                                         /usr/local/libexec/mesos (a source build's launcher_dir)
#   mesos-executor-shim-test/agent-docker-baked  the same, with the shim baked in under both names
# usage: docker/test/build-images.sh SHIM_BINARY
# Every step that can fail goes through `step`: a failure names the step, the command and its
# output, and exits 1. Nothing is left to `set -e`, which would end the script without a word.
set -eu
shim=${1:?usage: $0 SHIM_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
die() {
  reported=yes
  echo "build-images: FAILED: $*" >&2
  exit 1
}
# step WHAT COMMAND...: runs COMMAND quietly; on failure prints WHAT, the command and its output.
step() {
  what=$1
  shift
  if ! step_output=$("$@" 2>&1); then
    printf 'build-images: command: %s\n%s\n' "$*" "$step_output" | sed '2,$s/^/build-images:   /' >&2
    die "$what"
  fi
}
# Any other command that stops the script (a cp, a mkdir) is named by the phase it was in.
phase=start reported=no work=
finish() {
  status=$?
  [ -z "$work" ] || rm -rf "$work"
  if [ "$status" != 0 ] && [ "$reported" = no ]; then
    echo "build-images: FAILED with status $status while $phase (its error is above)" >&2
  fi
}
trap finish EXIT
repo=$(cd "$here/../.." && pwd)
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q static; then
  for b in /bin/busybox /usr/bin/busybox; do
    if file -L "$b" 2>/dev/null | grep -q static; then busybox=$b; fi
  done
fi
if ! file -L "$busybox" 2>/dev/null | grep -q static; then
  die "a static busybox is needed (Debian: apt-get install busybox-static)"
fi

images="agent agent-baked agent-docker agent-docker-baked"
docker_cli=$(command -v docker)
# What the images are made of: when none of it changed, the images on the daemon are current and
# are kept (every test binary asks for them; rebuilding would leave the replaced ones behind).
[ -f "$shim" ] || die "no shim binary at $shim (cargo build --release first)"
step "reaching the Docker daemon (is dockerd running? bash .ci/run starts one)" \
  docker info --format '{{.ServerVersion}}'
inputs=$(cat "$shim" "$busybox" "$docker_cli" "$here"/*.sh "$repo"/Dockerfile.mesos-slave* \
  "$repo/docker/install-shim.sh" | sha256sum | cut -c1-16)
current=yes
for image in $images; do
  label=$(docker image inspect -f '{{index .Config.Labels "mesos-executor-shim-test.inputs"}}' \
    "mesos-executor-shim-test/$image:latest" 2>/dev/null) || label=
  [ "$label" = "$inputs" ] || current=no
done
if [ "$current" = yes ]; then
  echo "mesos-executor-shim-test/{agent,agent-baked,agent-docker,agent-docker-baked}:latest are current"
  exit 0
fi
# The images these replace, if any: on a daemon that never saw the project there are none, and
# the inspect fails for each; that is not an error.
previous=
for image in $images; do
  id=$(docker image inspect -f '{{.Id}}' "mesos-executor-shim-test/$image:latest" 2>/dev/null) || id=
  previous="$previous $id"
done

phase="laying out the busybox rootfs"
work=$(mktemp -d)
root=$work/rootfs
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/usr/libexec/mesos" "$root/var/run"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
install -m 0755 "$here/standin-agent.sh" "$root/standin-agent.sh"
install -m 0755 "$here/standin-executor.sh" "$root/usr/libexec/mesos/mesos-executor"
install -m 0755 "$here/standin-launch-helper.sh" "$root/usr/libexec/mesos/mesos-containerizer"
step "importing mesos-executor-shim-test/agent" sh -c 'tar -C "$1" -c . | docker import \
  --change "ENV PATH=/bin" --change "CMD [\"/bin/sh\"]" \
  --change "LABEL mesos-executor-shim-test.inputs=$2" \
  - mesos-executor-shim-test/agent:latest' sh "$root" "$inputs"

phase="adding the docker CLI and its libraries"
# The docker CLI and what it links: a separate image, so that the other tests do not copy it into
# every container (the vfs storage driver copies each container's whole image).
mkdir -p "$root/usr/bin" "$root/usr/local/libexec/mesos"
cp "$docker_cli" "$root/usr/bin/docker"
for lib in $(ldd "$docker_cli" 2>/dev/null | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
install -m 0755 "$here/standin-docker-executor.sh" "$root/usr/libexec/mesos/mesos-docker-executor"
install -m 0755 "$here/standin-executor.sh" "$root/usr/local/libexec/mesos/mesos-executor"
install -m 0755 "$here/standin-launch-helper.sh" "$root/usr/local/libexec/mesos/mesos-containerizer"
install -m 0755 "$here/standin-docker-executor.sh" "$root/usr/local/libexec/mesos/mesos-docker-executor"
step "importing mesos-executor-shim-test/agent-docker" sh -c 'tar -C "$1" -c . | docker import \
  --change "ENV PATH=/usr/bin:/bin" --change "CMD [\"/bin/sh\"]" \
  --change "LABEL mesos-executor-shim-test.inputs=$2" \
  - mesos-executor-shim-test/agent-docker:latest' sh "$root" "$inputs"

phase="preparing the build context"
context=$work/context
mkdir -p "$context/docker"
cp "$shim" "$context/mesos-executor-shim"
cp "$repo/docker/install-shim.sh" "$context/docker/install-shim.sh"
# The legacy builder, as an operator without BuildKit would build: no registry is needed for a
# FROM of a local image.
for base in agent agent-docker; do
  step "building mesos-executor-shim-test/$base-baked from Dockerfile.mesos-slave-prebuilt" \
    env DOCKER_BUILDKIT=0 docker build -q -f "$repo/Dockerfile.mesos-slave-prebuilt" \
    --build-arg MESOS_IMAGE=mesos-executor-shim-test/$base:latest \
    --build-arg SHIM_BINARY=mesos-executor-shim --label "mesos-executor-shim-test.inputs=$inputs" \
    -t mesos-executor-shim-test/$base-baked:latest "$context"
done
# The images these replaced, and the intermediate layers of the builds, go (one a container still
# uses stays).
for id in $previous; do
  docker rmi "$id" >/dev/null 2>&1 || true
done
echo "built mesos-executor-shim-test/{agent,agent-baked,agent-docker,agent-docker-baked}:latest"
