#!/usr/bin/env bash
# Runs the README's two commands (scripts/quickstart.sh, then scripts/test.sh) in a fresh
# Debian 12 root: `debootstrap --variant=minbase bookworm` from the Debian mirror this machine's
# apt uses, a clean copy of the checkout's HEAD (git archive: uncommitted changes are not part
# of it), chroot with /proc, /sys and /dev mounted (unmounted on exit). Prints each command's
# summary line (quickstart: the 'final:' line; test.sh: 'N passed, N failed') and how long each
# step took; exits non-zero when a step fails. Slow (debootstrap, the packages, three builds,
# every test, the fuzz runs): run it under `nice`, not in CI.
#
# usage: scripts/check-fresh.sh [--only quickstart|test] [--keep] [--root DIR]
#   --only quickstart|test   run just one of the two commands
#   --keep                   leave the root in place afterwards (its path is printed)
#   --root DIR               use DIR as the root: debootstrap when it holds no system yet, else
#                            reuse it (a kept root: packages already installed); implies --keep
# FUZZ_SECONDS is passed on to scripts/test.sh. Needs root (chroot, mount) and debootstrap.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
only="" keep=0 root=""
while [ $# -gt 0 ]; do
    case $1 in
    --only) only=${2:-}; shift 2 ;;
    --keep) keep=1; shift ;;
    --root) root=${2:-}; keep=1; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-fresh: unexpected '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case $only in "" | quickstart | test) ;; *) echo "check-fresh: --only quickstart|test" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "check-fresh: needs root (debootstrap, chroot, mount)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "check-fresh: debootstrap is not installed" >&2; exit 2; }

# The mirror: the first Debian (not security) URI of this machine's apt sources.
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    sed -nE 's/^[[:space:]]*(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?([a-z]+:\/\/[^[:space:]]+).*/\3/p' |
    grep -m1 -E '/debian/?$')
mirror=${mirror:-http://deb.debian.org/debian}

[ -n "$root" ] || root=$(mktemp -d /var/tmp/gemmnet-fresh.XXXXXX)
mkdir -p "$root"
root=$(cd "$root" && pwd)
logs=$(mktemp -d /tmp/gemmnet-fresh-logs.XXXXXX)
mounted=()

cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null; done
    if [ "$keep" -eq 0 ]; then
        # never delete through a mount that is still there (/dev would go with it)
        if grep -q " $root/" /proc/mounts; then
            echo "check-fresh: mounts left under $root, not removing it" >&2
        else
            rm -rf --one-file-system "$root"
        fi
    else
        echo "root kept: $root (reuse with --root $root)"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

status=0
report=()
step() { # name, command...: runs it, records its time and result
    local name=$1 t0 rc
    shift
    t0=$(date +%s)
    "$@" >"$logs/$name.log" 2>&1
    rc=$?
    local dt=$(($(date +%s) - t0))
    report+=("$(printf '%-12s %s, %dm%02ds' "$name" "$([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)")" $((dt / 60)) $((dt % 60)))")
    [ $rc -eq 0 ] || { status=1; echo "$name failed; the end of $logs/$name.log:"; tail -n 40 "$logs/$name.log"; }
    return $rc
}

echo "fresh root $root, mirror $mirror, logs $logs"
if [ ! -x "$root/usr/bin/apt-get" ]; then
    step debootstrap debootstrap --variant=minbase bookworm "$root" "$mirror" || exit 1
fi
# the same apt sources as this machine (updates, security), the chroot's own list replaced
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -q "debian" "$f" && ! grep -qE 'nodesource|google' "$f" && cp "$f" "$root$f"
done
[ -f /etc/apt/sources.list ] || [ ! -f /etc/apt/sources.list.d/debian.sources ] || : >"$root/etc/apt/sources.list"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
# Where this machine reaches the registries through a proxy with its own certificate authority
# (NODE_EXTRA_CA_CERTS names it), npm in the root needs it too; a machine without one is unchanged.
extra_ca=""
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
    cp "$NODE_EXTRA_CA_CERTS" "$root/etc/host-extra-ca.crt" && extra_ca=/etc/host-extra-ca.crt
fi

# a clean copy of HEAD (what a user cloning the repository gets)
rm -rf --one-file-system "$root/gemmnet"
mkdir -p "$root/gemmnet"
git -C "$repo" archive HEAD | tar -x -C "$root/gemmnet" || { echo "check-fresh: git archive failed" >&2; exit 1; }
echo "checkout: $(git -C "$repo" log -1 --format='%h %s')"
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] ||
    echo "note: uncommitted changes in $repo are not part of the check"

mnt() { # type-or-bind, source, target
    mkdir -p "$3"
    if [ "$1" = bind ]; then mount --bind "$2" "$3"; else mount -t "$1" "$2" "$3"; fi &&
        mounted+=("$3")
}
mnt proc proc "$root/proc" && mnt sysfs sys "$root/sys" && mnt bind /dev "$root/dev" &&
    mnt bind /dev/pts "$root/dev/pts" && mnt tmpfs shm "$root/dev/shm" ||
    { echo "check-fresh: mounting /proc, /sys or /dev failed" >&2; exit 1; }

in_root() { # command line, run as root in a clean environment inside the root
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        ${FUZZ_SECONDS:+FUZZ_SECONDS=$FUZZ_SECONDS} ${extra_ca:+NODE_EXTRA_CA_CERTS=$extra_ca} \
        bash -c "cd /gemmnet && $1"
}
summary=()
if [ "$only" != test ]; then
    step quickstart in_root scripts/quickstart.sh
    summary+=("quickstart:  $(grep -m1 '^final:' "$logs/quickstart.log" || echo '(no final: line)')")
fi
if [ "$only" != quickstart ]; then
    step test in_root scripts/test.sh
    summary+=("test.sh:     $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$logs/test.log" | tail -n 1 || echo '(no summary line)')")
    grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT|ERROR)' "$logs/test.log" | sed 's/^/  /'
fi
echo
printf '%s\n' "${report[@]}" "${summary[@]}"
echo "logs: $logs"
exit $status
