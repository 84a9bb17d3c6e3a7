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
  - mesos-executor-shim-test/agent:latest >/dev/null

# The docker CLI and what it links: a separate image, so that the other tests do not copy it into
# every container (the vfs storage driver copies each container's whole image).
docker_cli=$(command -v docker)
mkdir -p "$root/usr/bin" "$root/usr/local/libexec/mesos"
cp "$docker_cli" "$root/usr/bin/docker"
for lib in $(ldd "$docker_cli" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
install -m 0755 "$here/standin-docker-executor.sh" "$root/usr/libexec/mesos/mesos-docker-executor"
install -m 0755 "$here/standin-executor.sh" "$root/usr/local/libexec/mesos/mesos-executor"
install -m 0755 "$here/standin-docker-executor.sh" "$root/usr/local/libexec/mesos/mesos-docker-executor"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/bin:/bin' --change 'CMD ["/bin/sh"]' \
  - mesos-executor-shim-test/agent-docker:latest >/dev/null

context=$work/context
mkdir -p "$context/docker"
cp "$shim" "$context/mesos-executor-shim"
cp "$repo/docker/install-shim.sh" "$context/docker/install-shim.sh"
# The legacy builder: no registry is needed for a FROM of a local image.
for base in agent agent-docker; do
  if ! DOCKER_BUILDKIT=0 docker build -q -f "$repo/Dockerfile.mesos-slave" --target baked-prebuilt \
    --build-arg MESOS_IMAGE=mesos-executor-shim-test/$base:latest \
    --build-arg SHIM_BINARY=mesos-executor-shim \
    -t mesos-executor-shim-test/$base-baked:latest "$context" >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    exit 1
  fi
done
echo "built mesos-executor-shim-test/{agent,agent-baked,agent-docker,agent-docker-baked}:latest"
