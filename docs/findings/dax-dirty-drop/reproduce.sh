#!/bin/sh
# Reproduces docs/findings/dax-dirty-drop on a kernel powercut can boot (any --kernel SPEC:
# a cached release from `powercut kernel list`, a .deb, a build tree).
#
#   reproduce.sh ftrace KERNEL [ext4|xfs]   no power cut: builds dax-dirty-drop.c (gcc
#       -static), boots KERNEL with `powercut vm exec`, and prints per case which DAX
#       write-back functions ran during the durability op. "during: NOTHING" is the bug.
#   reproduce.sh cache KERNEL [ext4|xfs] [SPEC...]   under powercut's cache crash model:
#       the finding's campaign (ci/findings.yaml or ci/findings-xfs.yaml) on KERNEL, or only
#       the given specs of workloads/specs/findings/. Exit 1 with the finding's buckets on
#       an affected kernel, 0 on one without the bug, 3 if an expected failure did not come.
#
# Run from the powercut checkout's root or anywhere (POWERCUT defaults to the checkout's
# target/release/powercut).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
pc=${POWERCUT:-$root/target/release/powercut}
mode=${1:-}
kernel=${2:-}
fs=${3:-ext4}
[ -n "$mode" ] && [ -n "$kernel" ] || { sed -n '2,14p' "$0"; exit 2; }
case "$fs" in
  ext4) pmem=256 config=ci/findings.yaml ;;
  xfs) pmem=512 config=ci/findings-xfs.yaml ;;
  *) echo "reproduce.sh: file system ext4 or xfs, not $fs" >&2; exit 2 ;;
esac
case "$mode" in
  ftrace)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    gcc -static -O2 -Wall -o "$tmp/dax-dirty-drop" "$here/dax-dirty-drop.c"
    cases=""
    for op in fsync fdatasync msync sync; do
      for trig in none ftruncate-up ftruncate-down punch-hole zero-range allocate; do
        cases="$cases $trig:$op"
      done
    done
    set -- $cases none:sync:--map-sync none:fsync:--map-sync none:msync:--map-sync
    "$pc" vm exec --kernel "$kernel" --fs "$fs" --pmem-mib "$pmem" \
      --put "$tmp/dax-dirty-drop" --put "$here/ftrace-guest.sh" -- sh ftrace-guest.sh "$@"
    ;;
  cache)
    shift 3 2>/dev/null || shift $#
    cd "$root"
    set -- $(for s in "$@"; do printf ' --workload workloads/specs/findings/%s.yaml' "${s%.yaml}"; done)
    exec "$pc" campaign --config "$config" --kernel "$kernel" "$@"
    ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
