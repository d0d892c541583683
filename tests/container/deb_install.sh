#!/bin/bash
# The .deb on a clean Debian 12: installed with apt (dependencies from dpkg-shlibdeps), run,
# its man pages found by man, removed (only the conffile and logs stay) and purged (nothing
# stays). The system is a debootstrap --variant=minbase bookworm, made once and cached in
# CACHE; each run works on an overlay above it, so the cache stays clean.
#   deb_install.sh DEB_DIR CACHE        exit 0 pass, 1 fail, 77 skip (with the reason)
set -euo pipefail

deb_dir=${1:-} cache=${2:?usage: deb_install.sh DEB_DIR CACHE}
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, mount)"
command -v debootstrap >/dev/null || skip "debootstrap is not installed (apt-get install debootstrap)"
deb=$(ls "$deb_dir"/cowherd_*.deb 2>/dev/null | head -n 1) || true
[ -n "$deb" ] || skip "no cowherd_*.deb in '$deb_dir': make deb builds it (make test-container runs both)"

# The clean system, once: from the Debian mirror apt already uses.
if [ ! -e "$cache/etc/debian_version" ]; then
    mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' |
        awk '$2 == "bookworm" { print $1; exit }')
    [ -n "$mirror" ] || skip "apt has no bookworm mirror configured to debootstrap from"
    rm -rf "$cache.partial"
    echo "debootstrap --variant=minbase bookworm from $mirror (cached in $cache)"
    debootstrap --variant=minbase bookworm "$cache.partial" "$mirror" >"$cache.log" 2>&1 ||
        fail "debootstrap failed: see $cache.log"
    rm -rf "$cache"
    mv "$cache.partial" "$cache"
fi

work=$(mktemp -d "$(dirname "$cache")/deb-install.XXXXXX")
root=$work/root
cleanup() {
    umount "$root/proc" 2>/dev/null || true
    umount "$root" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/upper" "$work/work" "$root"
mount -t overlay overlay -o "lowerdir=$cache,upperdir=$work/upper,workdir=$work/work" "$root"
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
apt_get() { in_root env DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o Dpkg::Use-Pty=0 "$@"; }

# man itself is not in minbase; it comes before the snapshot, as any admin's tools would.
apt_get update >/dev/null
apt_get install --no-install-recommends man-db >/dev/null

# Every path on the system but the ones apt and dpkg keep for themselves.
snapshot() {
    (cd "$root" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./tmp -o -path ./run \
        -o -path ./var/lib/dpkg -o -path ./var/lib/apt -o -path ./var/cache -o -path ./var/log/apt \
        -o -path ./var/log/dpkg.log -o -path ./var/lib/man-db -o -path ./etc/ld.so.cache \) \
        -prune -o -print | sed 's/^\.//' | sort)
}
packages() { in_root dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' | awk '$2 == "ii" { print $1 }' | sort; }
snapshot >"$work/before"
packages >"$work/packages-before"

echo "== apt-get install $(basename "$deb")"
cp "$deb" "$root/tmp/"
apt_get install --no-install-recommends "/tmp/$(basename "$deb")" ||
    fail "apt-get install of the .deb failed"
echo "Depends: $(dpkg-deb -f "$deb" Depends)"
packages >"$work/packages-after"
# What the dependencies brought, to tell it apart from what cowherd leaves.
comm -13 "$work/packages-before" "$work/packages-after" | grep -vx cowherd >"$work/deps" || true
: >"$work/dep-files"
while read -r p; do in_root dpkg-query -L "$p" >>"$work/dep-files"; done <"$work/deps"
# Bookworm's /lib, /bin and /sbin are links into /usr, where find sees their files.
sed -E 's#^/(lib|lib64|bin|sbin)/#/usr/\1/#' "$work/dep-files" | sort -u -o "$work/dep-files"

echo "== cowherd --check, cowctl --help"
in_root cowherd --check || fail "cowherd --check on the default /etc/cowherd/cowherd.yaml failed"
in_root cowctl --help >"$work/cowctl-help" || fail "cowctl --help failed"
in_root cowherd --version | grep -q "cowherd $(dpkg-deb -f "$deb" Version)" ||
    fail "cowherd --version does not say the package's version"
in_root dpkg-query -W -f='${Conffiles}\n' cowherd | grep -q '/etc/cowherd/cowherd.yaml' ||
    fail "/etc/cowherd/cowherd.yaml is not a conffile"
[ -f "$root/lib/systemd/system/cowherd.service" ] || fail "no systemd unit"
[ -f "$root/usr/share/bash-completion/completions/cowctl" ] || fail "no bash completion"

echo "== man"
for page in cowherd cowctl cowherd.yaml; do
    in_root man -w "$page" || fail "man does not find $page"
done
render() { in_root env MANWIDTH=200 man "$@" 2>/dev/null; }
render 8 cowherd >"$work/man-cowherd"
for opt in --config --check --log-level --version; do
    grep -q -- "$opt" "$work/man-cowherd" || fail "cowherd(8) lacks $opt from --help"
done
render 1 cowctl >"$work/man-cowctl"
for verb in $(sed -n '/^Subcommands:/,$p' "$work/cowctl-help" | awk 'NR > 1 && NF { print $1 }'); do
    grep -q "^ *$verb\$" "$work/man-cowctl" || fail "cowctl(1) has no section for the verb $verb"
done
render 5 cowherd.yaml | grep -q "shutdown_timeout" || fail "cowherd.yaml(5) lacks the config keys"

# Left behind by remove: the conffile (and its directory), and /var/log/cowherd that
# --check created for the default config's log_dir.
leftovers() { comm -13 "$work/before" <(snapshot) | comm -23 - "$work/dep-files"; }
echo "== apt-get remove"
apt_get remove cowherd >/dev/null
expected=$'/etc/cowherd\n/etc/cowherd/cowherd.yaml\n/var/log/cowherd'
[ "$(leftovers)" = "$expected" ] || fail "remove left: $(leftovers | tr '\n' ' ')"
echo "== apt-get purge"
apt_get purge cowherd >/dev/null
[ -z "$(leftovers)" ] || fail "purge left: $(leftovers | tr '\n' ' ')"
echo "PASS: installed, ran, found its man pages, removed and purged cleanly"
