//! Kernel coverage (`cov=PATH`), the bookkeeping behind it (no QEMU calls): every kernel
//! block QEMU translates gets a counter slot (an inline add QEMU compiles into the block,
//! so counting costs no callback), the counts are copied at the op markers, and at exit
//! each block is written with the phases it ran in ([`trace_format::coverage`]).
//!
//! Every workload VM starts with an empty translation cache (restored or booted), so the
//! blocks translated are the blocks that ran; the counters only tell *when* they ran
//! (set-up, the ops, after).

use std::collections::HashMap;
use std::io::Write;

use crate::format::coverage::{
    block_line, end_line, phases_of, COVERAGE_MAGIC, PHASE_AFTER, PHASE_OPS, PHASE_SETUP,
    PHASE_TRANSLATED,
};

/// Counter slots (8 bytes each in QEMU's scoreboard): 256 Ki blocks, 2 MiB. A run of the
/// default profile translates about 40 K kernel blocks.
pub const SLOTS: usize = 1 << 18;

struct Block {
    vaddr: u64,
    insns: u32,
    bytes: u32,
    /// Counter slot, or `None` (out of slots: the phase of translation is kept instead).
    slot: Option<usize>,
    translated_in: u8,
}

/// The coverage state of one VM.
#[derive(Default)]
pub struct Coverage {
    index: HashMap<u64, usize>,
    blocks: Vec<Block>,
    used: usize,
    at_start: Option<Vec<u64>>,
    at_done: Option<Vec<u64>>,
    overflow: u64,
    markers: u64,
}

impl Coverage {
    /// The phase the guest is in now (for blocks without a counter).
    fn phase_now(&self) -> u8 {
        if self.at_start.is_none() {
            PHASE_SETUP
        } else {
            PHASE_OPS
        }
    }

    /// A kernel block at `vaddr` was translated (again, perhaps: a retranslation keeps its
    /// slot and the larger of its sizes). Returns the counter slot to add to, if any.
    pub fn translated(&mut self, vaddr: u64, insns: u32, bytes: u32) -> Option<usize> {
        if let Some(&i) = self.index.get(&vaddr) {
            let b = &mut self.blocks[i];
            b.insns = b.insns.max(insns);
            b.bytes = b.bytes.max(bytes);
            return b.slot;
        }
        let slot = (self.used < SLOTS).then_some(self.used);
        match slot {
            Some(_) => self.used += 1,
            None => self.overflow += 1,
        }
        let translated_in = self.phase_now();
        self.index.insert(vaddr, self.blocks.len());
        self.blocks.push(Block {
            vaddr,
            insns,
            bytes,
            slot,
            translated_in,
        });
        slot
    }

    /// Number of counter slots in use.
    pub fn used(&self) -> usize {
        self.used
    }

    /// An op marker; `counts` are the counters of the slots in use.
    pub fn marker(&mut self, done: bool, counts: &[u64]) {
        self.markers += 1;
        if done {
            if self.at_start.is_some() {
                self.at_done = Some(counts.to_vec());
            }
        } else if self.at_start.is_none() {
            self.at_start = Some(counts.to_vec());
        }
    }

    /// Write the file (`counts`: the final counters of the slots in use).
    pub fn write(&self, out: &mut dyn Write, counts: &[u64]) -> std::io::Result<()> {
        let mut buf = String::with_capacity(32 * self.blocks.len() + 128);
        buf.push_str(COVERAGE_MAGIC);
        buf.push('\n');
        let at =
            |v: &Option<Vec<u64>>, s: usize| v.as_ref().map(|c| c.get(s).copied().unwrap_or(0));
        let mut ran = [0u64; 3];
        for b in &self.blocks {
            let phases = match b.slot {
                Some(s) => phases_of(
                    at(&self.at_start, s),
                    at(&self.at_done, s),
                    counts.get(s).copied().unwrap_or(0),
                ),
                None => PHASE_TRANSLATED | b.translated_in,
            };
            for (i, p) in [PHASE_SETUP, PHASE_OPS, PHASE_AFTER].iter().enumerate() {
                if phases & p != 0 {
                    ran[i] += 1;
                }
            }
            buf.push_str(&block_line(b.vaddr, b.insns, b.bytes, phases));
        }
        buf.push_str(&end_line(&format!(
            "{{\"blocks\":{},\"setup\":{},\"ops\":{},\"after\":{},\"overflow\":{},\"markers\":{},\"op_window\":{}}}",
            self.blocks.len(),
            ran[0],
            ran[1],
            ran[2],
            self.overflow,
            self.markers,
            self.at_start.is_some()
        )));
        out.write_all(buf.as_bytes())?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_get_slots_once_and_phases_from_the_marker_copies() {
        let mut c = Coverage::default();
        let a = c.translated(0xffff_ffff_8100_0000, 3, 12);
        let a_again = c.translated(0xffff_ffff_8100_0000, 4, 15);
        c.marker(false, &[5]); // first op starts: a ran 5 times
        let b = c.translated(0xffff_ffff_8100_0100, 2, 6);
        c.marker(true, &[5, 2]); // last op done: b ran twice, a not at all
        c.marker(false, &[5, 2]); // a later start changes nothing
        let mut out = Vec::new();
        c.write(&mut out, &[9, 2]).expect("write");
        let text = String::from_utf8(out).expect("utf8");

        assert_eq!((a, a_again, b), (Some(0), Some(0), Some(1)));
        assert_eq!(c.used(), 2);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], COVERAGE_MAGIC);
        // a: set-up and after (9 > 5), size kept at the larger translation.
        assert_eq!(lines[1], "ffffffff81000000 4 15 5");
        // b: during the ops only.
        assert_eq!(lines[2], "ffffffff81000100 2 6 2");
        assert!(lines[3].starts_with("end {\"blocks\":2,\"setup\":1,\"ops\":1,\"after\":1,"));
    }
}
