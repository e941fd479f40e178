#!/bin/sh
# Runs inside a powercut guest (busybox sh), from reproduce.sh through `powercut vm exec`:
# for each case, traces the DAX write-back and layout-break functions while
# ./dax-dirty-drop runs on /mnt (mounted -o dax), and prints how often each was called
# before the durability op and during it (between the program's trace markers).
#   sh ftrace-guest.sh TRIGGER:OP[:--map-sync] ...
set -u
T=/sys/kernel/debug/tracing
FUNCS="dax_writeback_mapping_range dax_flush arch_wb_cache_pmem dax_break_layout
dax_delete_mapping_range dax_delete_mapping_entry dax_layout_busy_page_range
dax_finish_sync_fault dax_insert_pfn_mkwrite"
[ -d "$T" ] || { echo "no tracefs at $T" >&2; exit 1; }
echo "kernel $(uname -r), $(grep ' /mnt ' /proc/mounts)"
echo 0 >"$T/tracing_on"
echo nop >"$T/current_tracer"
: >"$T/set_ftrace_filter"
traced=""
for f in $FUNCS; do
  # A function this kernel lacks (dax_break_layout before 6.15) or inlined is skipped.
  if echo "$f" >>"$T/set_ftrace_filter" 2>/dev/null; then traced="$traced $f"; fi
done
echo "traced:$traced"
echo function >"$T/current_tracer"
n=0
for c in "$@"; do
  trig=${c%%:*} rest=${c#*:}
  op=${rest%%:*} flag=""
  [ "$op" = "$rest" ] || flag=${rest#*:}
  n=$((n + 1))
  echo >"$T/trace"
  echo 1 >"$T/tracing_on"
  ./dax-dirty-drop $flag "/mnt/case$n" "$trig" "$op" >/dev/null
  rc=$?
  echo 0 >"$T/tracing_on"
  printf '%-16s %-9s %-10s rc=%s ' "$trig" "$op" "${flag:---map-shared}" "$rc"
  grep -v '^#' "$T/trace" | awk '
    /tracing_mark_write: dax-dirty-drop: .* begin/ { inside = 1; next }
    /tracing_mark_write: dax-dirty-drop: .* end/ { inside = 0; next }
    /tracing_mark_write/ { next }
    {
      line = $0; sub(/^.*[0-9]: /, "", line); split(line, w, " "); fn = w[1]
      if (fn == "") next
      if (inside) during[fn]++; else before[fn]++
    }
    END {
      s = ""; for (f in before) s = s f "x" before[f] " "; printf "before: %-70s", (s == "" ? "-" : s)
      s = ""; for (f in during) s = s f "x" during[f] " "; printf "during: %s\n", (s == "" ? "NOTHING" : s)
    }'
  rm -f "/mnt/case$n"
done
echo nop >"$T/current_tracer"
# The kernel's own complaints during all of the above (a debug kernel: lockdep, KASAN,
# DEBUG_VM, WARN_ON), and whether lockdep is still on (it switches itself off after the
# first report or taint).
echo "kernel complaints (dmesg):"
dmesg | grep -E 'WARNING:|BUG:|Oops:|circular locking|inconsistent lock state|INFO: task .* blocked' || echo "  none"
if [ -r /proc/lockdep_stats ]; then
  grep -E 'debug_locks|lock-classes|direct dependencies' /proc/lockdep_stats
fi
