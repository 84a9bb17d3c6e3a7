#!/bin/sh
# Builds a Mesos image on the local daemon, without any registry, from a Mesos 1.x install on this
# host (`sh ../shared/mesos/install.sh /opt/mesos` makes one): the install under /usr (bin/, lib/,
# libexec/mesos/, so that the agent's default --launcher_dir /usr/libexec/mesos holds the stock
# executors), the shared libraries its binaries link as this host resolves them, the docker CLI
# (the docker containerizer runs it) with its libraries, and a static busybox for /bin/sh and the
# tasks' tools. No ENTRYPOINT: the image serves as --docker_mesos_image too. docker/compose.yml
# runs the master from it and bakes the shim into it for the agent (Dockerfile.mesos-slave-prebuilt).
#
#   sh docker/mesos-image.sh [-t TAG] [-l KEY=VALUE]... MESOS_HOME
#
# TAG defaults to mesos-local:latest, compose.yml's default MESOS_IMAGE. A Mesos image of your own
# (the one your agents run today) serves as well: name it in MESOS_IMAGE instead.
set -eu
tag=mesos-local:latest
labels=
while getopts t:l: opt; do
  case $opt in
    t) tag=$OPTARG ;;
    l) labels="$labels $OPTARG" ;;
    *) echo "usage: $0 [-t TAG] [-l KEY=VALUE]... MESOS_HOME" >&2; exit 64 ;;
  esac
done
shift $((OPTIND - 1))
home=${1:?usage: $0 [-t TAG] [-l KEY=VALUE]... MESOS_HOME (a Mesos 1.x install prefix, e.g. /opt/mesos)}
die() {
  echo "mesos-image: FAILED: $*" >&2
  exit 1
}
version=$("$home/bin/mesos-agent" --version 2>/dev/null) \
  || die "$home/bin/mesos-agent --version does not run: name the prefix of a Mesos 1.x install"
case $version in
  "mesos 1."*) ;;
  *) die "$home/bin/mesos-agent --version says \"$version\", not mesos 1.x" ;;
esac
[ -x "$home/libexec/mesos/mesos-executor" ] || die "no $home/libexec/mesos/mesos-executor"
docker_cli=$(command -v docker) || die "the docker CLI is needed (Debian: docker.io)"
busybox=
for b in /bin/busybox /usr/bin/busybox; do
  if [ -x "$b" ] && file -L "$b" 2>/dev/null | grep -q static; then busybox=$b; fi
done
[ -n "$busybox" ] || die "a static busybox is needed (Debian: apt-get install busybox-static)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/usr/bin" "$root/usr/lib" "$root/usr/lib64" "$root/usr/libexec" "$root/etc" \
  "$root/tmp" "$root/var/tmp" "$root/run" "$root/var/lib/mesos" "$root/etc/mesos-executor-shim" \
  "$root/proc" "$root/sys" "$root/dev" "$root/root"
chmod 1777 "$root/tmp" "$root/var/tmp"
for link in bin:usr/bin sbin:usr/bin lib:usr/lib lib64:usr/lib64 var/run:../run; do
  ln -s "${link#*:}" "$root/${link%%:*}"
done

# The install, under /usr; its binaries find libmesos through their RUNPATH ($ORIGIN/../lib).
cp -a "$home/bin/." "$root/usr/bin/"
cp -a "$home/lib/." "$root/usr/lib/"
mkdir -p "$root/usr/libexec/mesos"
cp -a "$home/libexec/mesos/." "$root/usr/libexec/mesos/"
cp "$docker_cli" "$root/usr/bin/docker"
cp "$busybox" "$root/usr/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/usr/bin/$applet" ] || ln -s busybox "$root/usr/bin/$applet"
done

# Every shared library the binaries link, at the path the host's loader finds it (its directory
# resolved: /lib is /usr/lib on a merged-/usr host, and in the image).
for binary in "$root"/usr/bin/mesos-* "$root"/usr/libexec/mesos/* "$root"/usr/lib/libmesos*.so* "$root/usr/bin/docker"; do
  [ -f "$binary" ] && [ ! -L "$binary" ] || continue
  ldd "$binary" 2>/dev/null | grep -o '/[^ ]*' || true
done | sort -u > "$work/libraries"
[ -s "$work/libraries" ] || die "ldd found no library of $home's binaries"
while read -r library; do
  case $library in "$root"/*) continue ;; esac
  dir=$(cd "$(dirname "$library")" && pwd -P)
  mkdir -p "$root$dir"
  cp -L "$library" "$root$dir/"
done < "$work/libraries"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"

set -- --change "ENV PATH=/usr/local/bin:/usr/bin" --change "LABEL org.apache.mesos.version=${version#mesos }"
for label in $labels; do
  set -- "$@" --change "LABEL $label"
done
tar -C "$root" -c . | docker import "$@" - "$tag" >/dev/null \
  || die "docker import of $tag (its error is above)"
echo "built $tag: $version from $home"
