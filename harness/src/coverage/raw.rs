//! Reading the plugin's coverage file (`trace_format::coverage`): the kernel blocks one VM
//! translated, with their sizes and the phases they ran in. The file comes from a QEMU
//! that ran an untrusted guest: it is bounded, and anything that is not the format is an
//! error naming the line.

use trace_format::coverage::{COVERAGE_MAGIC, KERNEL_START};

/// Largest coverage file read (a default-profile run writes about 1.5 MiB).
pub const MAX_RAW_BYTES: u64 = 64 << 20;

/// One translated kernel block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawBlock {
    /// Start address.
    pub vaddr: u64,
    /// Instructions.
    pub insns: u32,
    /// Length in bytes.
    pub bytes: u32,
    /// `trace_format::coverage::PHASE_*` bits.
    pub phases: u8,
}

/// A coverage file that is not one.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// First line is not [`COVERAGE_MAGIC`].
    #[error("not a powercut coverage file (first line `{0}`)")]
    Magic(String),
    /// A block line that does not parse.
    #[error("coverage line {line}: `{text}` is not `ADDR INSNS BYTES PHASES`")]
    Line {
        /// 1-based line number.
        line: usize,
        /// The line, cut to 80 characters.
        text: String,
    },
    /// No `end` line: QEMU did not exit cleanly.
    #[error("the coverage file has no end line (QEMU killed before the plugin wrote it out)")]
    Truncated,
}

/// Parse a coverage file's text.
pub fn parse(text: &str) -> Result<Vec<RawBlock>, RawError> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    if first != COVERAGE_MAGIC {
        return Err(RawError::Magic(first.chars().take(80).collect()));
    }
    let mut out = Vec::new();
    for (i, l) in lines.enumerate() {
        if l.starts_with("end ") {
            return Ok(out);
        }
        let bad = || RawError::Line {
            line: i + 2,
            text: l.chars().take(80).collect(),
        };
        let mut w = l.split(' ');
        let mut next = || w.next().ok_or_else(bad);
        let vaddr = u64::from_str_radix(next()?, 16).map_err(|_| bad())?;
        let insns = next()?.parse().map_err(|_| bad())?;
        let bytes = next()?.parse().map_err(|_| bad())?;
        let phases = next()?.parse().map_err(|_| bad())?;
        if vaddr < KERNEL_START {
            return Err(bad());
        }
        out.push(RawBlock {
            vaddr,
            insns,
            bytes,
            phases,
        });
    }
    Err(RawError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_read_until_the_end_line() {
        let text = "powercut-coverage 1\nffffffff81000000 3 12 3\nffffffffc0001000 1 5 2\nend {}\n";

        let blocks = parse(text).expect("parse");

        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[1],
            RawBlock {
                vaddr: 0xffff_ffff_c000_1000,
                insns: 1,
                bytes: 5,
                phases: 2
            }
        );
    }

    #[test]
    fn bad_files_are_errors_that_say_where() {
        assert!(matches!(parse("PCTRACE"), Err(RawError::Magic(_))));
        assert!(matches!(
            parse("powercut-coverage 1\nffffffff81000000 3 12 3\n"),
            Err(RawError::Truncated)
        ));
        assert!(matches!(
            parse("powercut-coverage 1\nzz 1 2 3\nend {}\n"),
            Err(RawError::Line { line: 2, .. })
        ));
        // A user-space address is not something the plugin writes.
        assert!(matches!(
            parse("powercut-coverage 1\n401000 1 2 3\nend {}\n"),
            Err(RawError::Line { .. })
        ));
    }
}
