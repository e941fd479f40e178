#!/bin/bash
# The series' test on one kernel config: each patch on its own, both, and neither, built
# from one git tree by incremental rebuilds (only fs/dax.c and the release string change),
# each judged by the `expect:` rules of ci/findings.yaml and ci/findings-xfs.yaml through
# its CONFIG_LOCALVERSION; on the both-patches kernel also the regression suite (both crash
# models) and the ftrace reproducer, and a scan of every guest console for lockdep, KASAN
# and DEBUG_VM reports.
#
#   four-way.sh TREE OUT [STEP...]
#
# TREE: a kernel git tree with branches `stock` (the unpatched source), `p1` (patch 1),
# `p2` (patch 2 alone on stock) and `series` (both), a .config prepared with
# `powercut kernel kconfig` and built once (`make -j$(nproc)`).
# OUT: where run directories, logs and summary.txt go.
# STEPS (default: both p1 p2 none extra scan): both, p1, p2, none = findings ext4 + xfs on
# that variant (`series`, `p1`, `p2`, `stock`), or one file system with a suffix (`p2-xfs`);
# extra = on `series` the ftrace reproducer (ext4 + xfs) and the regression suite under both
# crash models; scan = the console scan only. The four-way table comes first: each variant
# is built once, `series` twice. A debug kernel boots slowly under TCG: export
# POWERCUT_BOOT_TIMEOUT (e.g. 900) so the golden image's first boot does not time out.
# STOP_AT (epoch seconds, optional): start nothing new after it.
# Releases: 7.3.4-daxfix-debug (both), -daxfix1-debug, -daxfix2-debug, -stock-debug (see
# the rules in ci/findings*.yaml; LV_SUFFIX replaces "-debug").
set -u
[ $# -ge 2 ] || { sed -n '2,26p' "$0"; exit 2; }
K=$(cd "$1" && pwd) || exit 2
mkdir -p "$2" && OUT=$(cd "$2" && pwd) || exit 2
shift 2
R=$(cd "$(dirname "$0")/../../.." && pwd)
PC=${POWERCUT:-$R/target/release/powercut}
SUF=${LV_SUFFIX:--debug}
STOP_AT=${STOP_AT:-0}
mkdir -p "$OUT/logs" "$OUT/runs"
S=$OUT/summary.txt
late() { [ "$STOP_AT" -gt 0 ] && [ "$(date +%s)" -ge "$STOP_AT" ]; }
note() { echo "$(date -u +%H:%M:%S) $*" | tee -a "$S"; }
release() { cat "$K/include/config/kernel.release"; }
run() { # name, command...
  local name=$1; shift
  if late; then note "$name SKIPPED (STOP_AT)"; return 0; fi
  local t0; t0=$(date +%s)
  (cd "$R" && "$@") >"$OUT/logs/$name.log" 2>&1
  note "$name rc=$? $(($(date +%s) - t0))s kernel=$(release)"
}
build() { # branch, localversion
  local br=$1 lv=$2 t0 rc
  if late; then note "build $br SKIPPED (STOP_AT)"; return 1; fi
  t0=$(date +%s)
  (cd "$K" && git checkout -q "$br" && bash scripts/config --set-str LOCALVERSION "$lv" &&
    make olddefconfig >/dev/null && nice -n 10 make -j"$(nproc)" LOCALVERSION=) >"$OUT/logs/build-$br.log" 2>&1
  rc=$?
  note "build $br ($lv) rc=$rc $(($(date +%s) - t0))s release=$(release) fs/dax.c vs stock: $(cd "$K" && git diff --shortstat stock -- fs/dax.c)"
  return $rc
}
on() { # branch, localversion: build unless the tree already is that
  # (a tree built without LOCALVERSION= on the make line ends in "+": a git tree off a tag)
  [ "$(cd "$K" && git rev-parse --abbrev-ref HEAD)" = "$1" ] && [ "$(release | sed 's/+$//')" = "7.3.4$2" ] || build "$1" "$2"
}
camp() { # tag, name, config, extra args...
  local tag=$1 name=$2 cfg=$3; shift 3
  rm -rf "$OUT/runs/$tag-$name"
  run "$tag-$name" "$PC" campaign --kernel "$K" --config "$cfg" --output "$OUT/runs/$tag-$name" "$@"
}
scan() { # every guest console of the runs: lockdep, KASAN, DEBUG_VM, other kernel warnings
  local pat='possible circular locking|possible recursive locking|inconsistent lock state|lockdep|DEBUG_LOCKS_WARN|WARNING:|BUG:|KASAN|kasan|VM_BUG_ON|page dumped because|Oops|Call Trace|INFO: task .* blocked|suspicious RCU'
  {
    echo "consoles scanned: $(find "$OUT/runs" -name '*console*' -type f | wc -l) files under $OUT/runs, and $OUT/logs/*ftrace*.log"
    echo "pattern: $pat"
    find "$OUT/runs" -name '*console*' -type f -print0 | xargs -0 -r grep -E -H -n "$pat" || true
    grep -E -H -n "$pat" "$OUT"/logs/*ftrace*.log 2>/dev/null || true
    echo "end of scan"
  } >"$OUT/console-scan.txt"
  note "scan: $(grep -c -v -e '^consoles scanned' -e '^pattern' -e '^end of scan' "$OUT/console-scan.txt") matching line(s), see console-scan.txt"
}
note "start: tree $K on $(cd "$K" && git rev-parse --abbrev-ref HEAD), release $(release)"
for step in "${@:-both p1 p2 none extra scan}"; do
  for s in $step; do
    case $s in
      both | p1 | p2 | none | both-ext4 | p1-ext4 | p2-ext4 | none-ext4 | both-xfs | p1-xfs | p2-xfs | none-xfs)
        v=${s%-*} fs=${s#*-}
        [ "$v" = "$s" ] && fs="ext4 xfs"
        case $v in
          both) br=series lv="-daxfix$SUF" ;;
          none) br=stock lv="-stock$SUF" ;;
          *) br=$v lv="-daxfix${v#p}$SUF" ;;
        esac
        on "$br" "$lv" || continue
        for f in $fs; do
          case $f in
            ext4) camp "$v" findings-ext4 ci/findings.yaml ;;
            xfs) camp "$v" findings-xfs ci/findings-xfs.yaml ;;
          esac
        done ;;
      extra)
        on series "-daxfix$SUF" || continue
        run both-ftrace-ext4 sh docs/findings/dax-dirty-drop/reproduce.sh ftrace "$K" ext4
        run both-ftrace-xfs sh docs/findings/dax-dirty-drop/reproduce.sh ftrace "$K" xfs
        camp both regression-cache ci/regression.yaml --crash-model cache
        camp both regression-snapshot ci/regression.yaml --crash-model snapshot ;;
      scan) scan ;;
      *) echo "four-way.sh: unknown step $s" >&2; exit 2 ;;
    esac
  done
done
note "end"
