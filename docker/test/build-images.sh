#!/bin/sh
# Builds, on the local daemon and without any registry, the images the tests and the demo use:
#   mesos-executor-shim-test/agent        busybox, the stand-in agent, and the stand-in executor
#                                         as the stock /usr/libexec/mesos/mesos-executor
#   mesos-executor-shim-test/agent-baked  the same, with the shim baked in by Dockerfile.mesos-slave
#   mesos-executor-shim-test/agent-docker the agent image plus the docker CLI and the stand-in
#                                         mesos-docker-executor, both executors also under
#                                         /usr/local/libexec/mesos (a source build's launcher_dir)
#   mesos-executor-shim-test/agent-docker-baked  the same, with the shim baked in under both names
# usage: docker/test/build-images.sh SHIM_BINARY
set -eu
shim=${1:?usage: $0 SHIM_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q static; then
  for b in /bin/busybox /usr/bin/busybox; do
    if file -L "$b" 2>/dev/null | grep -q static; then busybox=$b; fi
  done
fi
if ! file -L "$busybox" 2>/dev/null | grep -q static; then
  echo "build-images: a static busybox is needed (Debian: apt-get install busybox-static)" >&2
  exit 1
fi

images="agent agent-baked agent-docker agent-docker-baked"
docker_cli=$(command -v docker)
# What the images are made of: when none of it changed, the images on the daemon are current and
# are kept (every test binary asks for them; rebuilding would leave the replaced ones behind).
inputs=$(cat "$shim" "$busybox" "$docker_cli" "$here"/*.sh "$repo/Dockerfile.mesos-slave" \
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
previous=$(for image in $images; do
  docker image inspect -f '{{.Id}}' "mesos-executor-shim-test/$image:latest" 2>/dev/null
done)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/usr/libexec/mesos" "$root/var/run"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
install -m 0755 "$here/standin-agent.sh" "$root/standin-agent.sh"
install -m 0755 "$here/standin-executor.sh" "$root/usr/libexec/mesos/mesos-executor"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' \
  --change "LABEL mesos-executor-shim-test.inputs=$inputs" \
  - mesos-executor-shim-test/agent:latest >/dev/null

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
install -m 0755 "$here/standin-docker-executor.sh" "$root/usr/local/libexec/mesos/mesos-docker-executor"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/bin:/bin' --change 'CMD ["/bin/sh"]' \
  --change "LABEL mesos-executor-shim-test.inputs=$inputs" \
  - mesos-executor-shim-test/agent-docker:latest >/dev/null

context=$work/context
mkdir -p "$context/docker"
cp "$shim" "$context/mesos-executor-shim"
cp "$repo/docker/install-shim.sh" "$context/docker/install-shim.sh"
# The legacy builder: no registry is needed for a FROM of a local image.
for base in agent agent-docker; do
  if ! DOCKER_BUILDKIT=0 docker build -q -f "$repo/Dockerfile.mesos-slave" --target baked-prebuilt \
    --build-arg MESOS_IMAGE=mesos-executor-shim-test/$base:latest \
    --build-arg SHIM_BINARY=mesos-executor-shim --label "mesos-executor-shim-test.inputs=$inputs" \
    -t mesos-executor-shim-test/$base-baked:latest "$context" >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    exit 1
  fi
done
# The images these replaced, and the intermediate layers of the builds, go (one a container still
# uses stays).
for id in $previous; do
  docker rmi "$id" >/dev/null 2>&1 || true
done
echo "built mesos-executor-shim-test/{agent,agent-baked,agent-docker,agent-docker-baked}:latest"
