#!/bin/sh
# The container image, without Docker: an OCI bundle (a rootfs directory and a config.json)
# holding the static cowherd and cowctl as the image's whole userland, FROM scratch.
#
#   make static
#   packaging/oci-bundle.sh -c cowherd.yaml build/image
#   runc run -b build/image web          # cowherd is the container's PID 1
#   docker build -t web .                # the Dockerfile copies build/image/rootfs/ as is
#
# The Dockerfile and tests/container both start from this script, so the image the tests run
# is the image the Dockerfile describes. Add your workers to BUNDLE/rootfs (or to a layer of
# your own) before running it.
#
# config.json is Docker's defaults, minus what runc cannot apply on every host: no rlimits,
# no linux.resources and no cgroupsPath, so it runs where cgroups are hybrid or not delegated.
set -eu

usage() {
    echo "usage: $0 [-b BINDIR] -c CONFIG BUNDLE" >&2
    echo "  BINDIR  holds static cowherd and cowctl (default: build/static/bin)" >&2
    echo "  CONFIG  becomes /etc/cowherd/cowherd.yaml in the image" >&2
    exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
bindir=build/static/bin
config=
while getopts b:c:h opt; do
    case $opt in
    b) bindir=$OPTARG ;;
    c) config=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] && [ -n "$config" ] || usage
bundle=$1

for b in cowherd cowctl; do
    [ -x "$bindir/$b" ] || { echo "$0: no $bindir/$b (run make static)" >&2; exit 1; }
    # A dynamic binary would die in a scratch image with "error while loading shared libraries".
    if readelf -l "$bindir/$b" | grep -q 'program interpreter'; then
        echo "$0: $bindir/$b is dynamically linked; the image needs make static's" >&2
        exit 1
    fi
done
[ -r "$config" ] || { echo "$0: cannot read $config" >&2; exit 1; }
# Only ever replace a bundle of ours, never an arbitrary directory.
if [ -e "$bundle" ] && [ -n "$(ls -A "$bundle")" ] && [ ! -f "$bundle/config.json" ]; then
    echo "$0: $bundle exists and is not a bundle; not touching it" >&2
    exit 1
fi

rm -rf "$bundle/rootfs"
root=$bundle/rootfs
mkdir -p "$root/usr/bin" "$root/etc/cowherd" "$root/run" "$root/tmp" "$root/var/log/cowherd" \
    "$root/proc" "$root/sys" "$root/dev" "$root/root"
chmod 1777 "$root/tmp"
# Stripped, as the .deb's are: 5.6 and 3.1 MiB instead of 7.2 and 3.8.
install -s -m 0755 "$bindir/cowherd" "$bindir/cowctl" "$root/usr/bin/"
install -m 0644 "$here/image/etc/passwd" "$here/image/etc/group" \
    "$here/image/etc/nsswitch.conf" "$root/etc/"
install -m 0644 "$config" "$root/etc/cowherd/cowherd.yaml"

caps='"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
      "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
      "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"'
cat >"$bundle/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["/usr/bin/cowherd", "-c", "/etc/cowherd/cowherd.yaml"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "cwd": "/",
    "capabilities": {
      "bounding": [$caps],
      "effective": [$caps],
      "permitted": [$caps]
    },
    "noNewPrivileges": false
  },
  "root": {"path": "rootfs", "readonly": false},
  "hostname": "cowherd",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                   {"type": "mount"}],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                    "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                      "/proc/sysrq-trigger"]
  }
}
EOF
echo "$bundle: rootfs and config.json (entrypoint /usr/bin/cowherd -c /etc/cowherd/cowherd.yaml)"
