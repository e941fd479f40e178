//! The cache-model trace format, declared once: the TCG plugin (`harness/plugin`) writes
//! it, the harness (`powercut::cache_model::trace`) reads it; both depend on this crate.
//! std only.
//!
//! A trace is a header followed by records, little-endian, streamed as the guest runs:
//!
//! | part | bytes |
//! |---|---|
//! | header | [`MAGIC`] (8), format version u32, pmem base u64, pmem size u64, QEMU version (u16 length + UTF-8) |
//! | store | tag `0x00..=0x0C`: low 3 bits size code (0..=4 → 1, 2, 4, 8, 16 bytes), bit 3 non-temporal; zigzag varint of (pmem offset − previous store's offset); the value (size bytes) |
//! | flush | tag [`TAG_FLUSH`] + kind ([`FlushKind`]); varint of the pmem line index (offset / 64) |
//! | fence | tag [`TAG_FENCE`] + kind ([`FenceKind`]) |
//! | marker | tag [`TAG_MARKER`] + kind (0 op start, 1 op done); varint op index |
//! | store site | tag [`TAG_PC`]; zigzag varint of (guest PC − previous store site's PC): the instruction of the stores that follow (version 2) |
//! | end | tag [`TAG_END`]; varint length + UTF-8 JSON statistics; nothing follows |
//!
//! Offsets are relative to the pmem base. A trace without an end record was cut short (QEMU
//! killed): it is refused, never half-used. A store-site record is written only when the
//! storing instruction changes, so a `memcpy` of a page costs one; it is not an event of its
//! own (the reader attaches the PC to the stores after it, and trace positions count the
//! same as in version 1). Version 1 traces (no store sites) are still read, with PC 0.
#![deny(missing_docs)]

pub mod coverage;

/// First bytes of every trace.
pub const MAGIC: &[u8; 8] = b"PCTRACE\0";
/// Bumped on any incompatible change (2: store-site records).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version the reader still accepts (1: no store-site records).
pub const OLDEST_READABLE_VERSION: u32 = 1;
/// Bit of a store tag: non-temporal store (movnti, movntdq, …).
pub const STORE_NT: u8 = 0x08;
/// Flush records: `TAG_FLUSH + FlushKind`.
pub const TAG_FLUSH: u8 = 0x20;
/// Fence records: `TAG_FENCE + FenceKind`.
pub const TAG_FENCE: u8 = 0x30;
/// Marker records: `TAG_MARKER + kind`.
pub const TAG_MARKER: u8 = 0x40;
/// Store-site record: the guest PC of the stores that follow.
pub const TAG_PC: u8 = 0x50;
/// The end record.
pub const TAG_END: u8 = 0x7F;
/// Cache line size.
pub const LINE: u64 = 64;

/// Which instruction flushed a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlushKind {
    /// `clwb`: written back at the next fence (sfence, mfence, locked RMW).
    Clwb = 0,
    /// `clflushopt`: like clwb.
    Clflushopt = 1,
    /// `clflush`: ordered with every later store: durable at once.
    Clflush = 2,
}

/// Which instruction ordered earlier flushes (and non-temporal stores).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FenceKind {
    /// `sfence`: drains flushes and non-temporal stores.
    Sfence = 0,
    /// `mfence`: drains flushes and non-temporal stores.
    Mfence = 1,
    /// A locked read-modify-write (or `xchg` with memory): orders clwb/clflushopt only.
    Locked = 2,
    /// `wbinvd`/`wbnoinvd`: every dirty line is written back.
    Wbinvd = 3,
}

impl FlushKind {
    /// From the low bits of a flush tag.
    pub fn from_code(c: u8) -> Option<FlushKind> {
        match c {
            0 => Some(FlushKind::Clwb),
            1 => Some(FlushKind::Clflushopt),
            2 => Some(FlushKind::Clflush),
            _ => None,
        }
    }
}

impl FenceKind {
    /// From the low bits of a fence tag.
    pub fn from_code(c: u8) -> Option<FenceKind> {
        match c {
            0 => Some(FenceKind::Sfence),
            1 => Some(FenceKind::Mfence),
            2 => Some(FenceKind::Locked),
            3 => Some(FenceKind::Wbinvd),
            _ => None,
        }
    }
}

/// Append an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Zigzag-encode a signed delta.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Undo [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Size code of a store of `size` bytes (1, 2, 4, 8, 16).
pub fn size_code(size: usize) -> Option<u8> {
    match size {
        1 => Some(0),
        2 => Some(1),
        4 => Some(2),
        8 => Some(3),
        16 => Some(4),
        _ => None,
    }
}

/// Append the header.
pub fn put_header(out: &mut Vec<u8>, base: u64, size: u64, qemu: &str) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    let q = &qemu.as_bytes()[..qemu.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(q.len() as u16).to_le_bytes());
    out.extend_from_slice(q);
}

/// Append a store of `value` (1, 2, 4, 8 or 16 bytes) at pmem offset `off`; `prev` is the
/// previous store's offset (0 at the start) and is updated.
pub fn put_store(out: &mut Vec<u8>, prev: &mut u64, off: u64, value: &[u8], nt: bool) -> bool {
    let Some(code) = size_code(value.len()) else {
        return false;
    };
    out.push(code | if nt { STORE_NT } else { 0 });
    put_varint(out, zigzag(off.wrapping_sub(*prev) as i64));
    out.extend_from_slice(value);
    *prev = off;
    true
}

/// Append a flush of the line at pmem offset `off`.
pub fn put_flush(out: &mut Vec<u8>, kind: FlushKind, off: u64) {
    out.push(TAG_FLUSH + kind as u8);
    put_varint(out, off / LINE);
}

/// Append a fence.
pub fn put_fence(out: &mut Vec<u8>, kind: FenceKind) {
    out.push(TAG_FENCE + kind as u8);
}

/// Append a store-site record for the instruction at guest `pc`; `prev` is the previous
/// store site's PC (0 at the start) and is updated.
pub fn put_pc(out: &mut Vec<u8>, prev: &mut u64, pc: u64) {
    out.push(TAG_PC);
    put_varint(out, zigzag(pc.wrapping_sub(*prev) as i64));
    *prev = pc;
}

/// Append an op marker (`done` false: op start).
pub fn put_marker(out: &mut Vec<u8>, done: bool, op: u64) {
    out.push(TAG_MARKER + u8::from(done));
    put_varint(out, op);
}

/// Append the end record with its JSON statistics.
pub fn put_end(out: &mut Vec<u8>, stats_json: &str) {
    out.push(TAG_END);
    put_varint(out, stats_json.len() as u64);
    out.extend_from_slice(stats_json.as_bytes());
}
