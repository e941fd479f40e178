//! The kernel-coverage file, declared once: the TCG plugin (`cov=PATH`) writes it when QEMU
//! exits, the harness (`powercut::coverage::raw`) reads it. Text, one translated kernel
//! block a line:
//!
//! ```text
//! powercut-coverage 1
//! ffffffff81234560 7 31 2
//! …
//! end {"blocks":…,"overflow":…,"markers":…}
//! ```
//!
//! Each block line is the block's start address (hex, no `0x`), its instruction count, its
//! length in bytes, and [`Phase`] bits saying when it ran: before the workload's first op
//! (set-up: restore, mount, module loading, agent start), between the first op's start and
//! the last op's end, after that (read-back, quit). A block whose execution could not be
//! counted (more blocks than counter slots) has [`PHASE_TRANSLATED`] set and the phase in
//! which it was translated. Only kernel blocks (`vaddr >= KERNEL_START`) are written.
//! A file without its `end` line was cut short and is refused.

/// First line of every coverage file.
pub const COVERAGE_MAGIC: &str = "powercut-coverage 1";
/// Lowest address recorded: the upper half of a 48-bit address space (and 57-bit).
pub const KERNEL_START: u64 = 0xffff_8000_0000_0000;
/// Ran before the first op started (set-up).
pub const PHASE_SETUP: u8 = 1;
/// Ran between the first op's start marker and the last op's done marker.
pub const PHASE_OPS: u8 = 2;
/// Ran after the last op's done marker.
pub const PHASE_AFTER: u8 = 4;
/// Not counted: the phase bits say when the block was translated, not when it ran.
pub const PHASE_TRANSLATED: u8 = 8;

/// One block line.
pub fn block_line(vaddr: u64, insns: u32, bytes: u32, phases: u8) -> String {
    format!("{vaddr:x} {insns} {bytes} {phases}\n")
}

/// The end line.
pub fn end_line(stats_json: &str) -> String {
    format!("end {stats_json}\n")
}

/// Which phases a counted block ran in, from its execution count at the first op's start
/// (`at_start`, `None` if no op started), at the last op's end (`at_done`, `None` if no op
/// finished) and at exit (`total`). Counts only grow.
pub fn phases_of(at_start: Option<u64>, at_done: Option<u64>, total: u64) -> u8 {
    let start = at_start.unwrap_or(total);
    let mut p = 0;
    if start > 0 {
        p |= PHASE_SETUP;
    }
    if let Some(s) = at_start {
        // An op that never finished keeps the window open until exit.
        if at_done.unwrap_or(total) > s {
            p |= PHASE_OPS;
        }
    }
    if at_done.is_some_and(|d| total > d) {
        p |= PHASE_AFTER;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_the_counts_at_the_markers() {
        // Never a marker: everything is set-up.
        assert_eq!(phases_of(None, None, 3), PHASE_SETUP);
        // Ran before and during the ops.
        assert_eq!(phases_of(Some(2), Some(5), 5), PHASE_SETUP | PHASE_OPS);
        // First ran during the ops (no count at the start), then after.
        assert_eq!(phases_of(Some(0), Some(1), 4), PHASE_OPS | PHASE_AFTER);
        // Started an op that never finished: the window stays open until exit.
        assert_eq!(phases_of(Some(1), None, 2), PHASE_SETUP | PHASE_OPS);
        // Translated but never executed.
        assert_eq!(phases_of(Some(0), Some(0), 0), 0);
    }

    #[test]
    fn lines_are_hex_address_then_decimals() {
        assert_eq!(
            block_line(0xffff_ffff_8123_4560, 7, 31, PHASE_OPS),
            "ffffffff81234560 7 31 2\n"
        );
        assert_eq!(end_line("{}"), "end {}\n");
    }
}
