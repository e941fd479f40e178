//! Op markers: how the agent tells the cache-model TCG plugin which op is running.
//!
//! When a `Run` asks for markers, the agent executes one `cpuid` instruction just before it
//! sends `OpStarted{k}` and one just after it sends `OpDone{k}`, with
//!
//! | register | value |
//! |---|---|
//! | EAX (leaf) | [`MARKER_LEAF_BASE`] + kind ([`MARKER_OP_START`] = 0, [`MARKER_OP_DONE`] = 1) |
//! | ECX (subleaf) | op index `k` as u32 (saturated at `u32::MAX`) |
//!
//! A plugin recognises a marker by the `cpuid` opcode (`0F A2`) and reads EAX and ECX at the
//! instruction's execution callback (before it runs): `eax & 0xFFFF_0000 == MARKER_LEAF_BASE`,
//! kind `eax & 0xFFFF`, op index `ecx`. The leaf is in 0x4000_0000..=0x4FFF_FFFF, the range
//! CPUs leave to hypervisors, well above the leaves hypervisors define; what `cpuid` returns
//! for it (zeros, or QEMU TCG's clamp to the highest basic leaf) is ignored. `cpuid` is
//! serialising, so every store of the op has executed when the done marker retires. Under
//! KVM each marker costs a VM exit; markers are meant for TCG cache-model runs.

use crate::cpu;

/// High half of the marker leaf: `0x4A58` ("JX"); the low half is the marker kind.
pub const MARKER_LEAF_BASE: u32 = 0x4A58_0000;
/// Kind: op `k` is about to start (emitted before `OpStarted{k}`).
pub const MARKER_OP_START: u32 = 0;
/// Kind: op `k` has returned (emitted after `OpDone{k}`).
pub const MARKER_OP_DONE: u32 = 1;

/// Which edge of an op a marker marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Before the op.
    OpStart,
    /// After the op.
    OpDone,
}

impl Marker {
    /// The EAX value (`cpuid` leaf) of this marker.
    pub fn leaf(self) -> u32 {
        MARKER_LEAF_BASE
            | match self {
                Marker::OpStart => MARKER_OP_START,
                Marker::OpDone => MARKER_OP_DONE,
            }
    }

    /// The ECX value (`cpuid` subleaf) for op index `k`.
    pub fn subleaf(k: usize) -> u32 {
        u32::try_from(k).unwrap_or(u32::MAX)
    }

    /// Execute the marker `cpuid` for op `k` (no-op off x86_64).
    pub fn emit(self, k: usize) {
        let out = cpu::cpuid(self.leaf(), Marker::subleaf(k));
        std::hint::black_box(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_the_documented_registers() {
        assert_eq!(Marker::OpStart.leaf(), 0x4A58_0000);
        assert_eq!(Marker::OpDone.leaf(), 0x4A58_0001);
        assert_eq!(Marker::subleaf(17), 17);
        assert_eq!(Marker::subleaf(usize::MAX), u32::MAX);
    }

    #[test]
    fn emitting_a_marker_outside_a_plugin_is_harmless() {
        Marker::OpStart.emit(3);
        Marker::OpDone.emit(3);
    }
}
