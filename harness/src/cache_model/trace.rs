//! Reading a plugin trace (format in [`super::format`]): the header, then an iterator of
//! [`Event`]s over the bytes, and the end record's statistics. A trace without its end
//! record, or with a record that does not parse, is refused.

use super::format::{self, FenceKind, FlushKind};

/// Errors reading a trace.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Not a trace, or another format version.
    #[error("not a powercut trace (format version 1 or 2 expected): {0}")]
    Header(String),
    /// A record did not parse.
    #[error("trace record at byte {at} is malformed: {what}")]
    Record {
        /// Byte offset.
        at: usize,
        /// What is wrong.
        what: String,
    },
    /// The end record is missing: QEMU did not exit cleanly.
    #[error("the trace ends at byte {0} without its end record (QEMU was killed before the plugin could finish it)")]
    Truncated(usize),
}

/// The trace header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Guest-physical base of the NVDIMM.
    pub base: u64,
    /// NVDIMM size.
    pub size: u64,
    /// QEMU version the plugin was given.
    pub qemu: String,
}

/// One trace record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A store of `len` bytes of `value` at pmem offset `off`.
    Store {
        /// pmem offset.
        off: u64,
        /// Length (1..=16).
        len: u8,
        /// Value bytes (first `len` used).
        value: [u8; 16],
        /// Non-temporal.
        nt: bool,
        /// Guest PC of the storing instruction (0: not recorded, a version 1 trace).
        pc: u64,
    },
    /// A flush of the line at pmem offset `line * 64`.
    Flush {
        /// Line index.
        line: u64,
        /// Instruction.
        kind: FlushKind,
    },
    /// A fence that ordered something.
    Fence(FenceKind),
    /// Op `op` starts.
    OpStart(usize),
    /// Op `op` is done.
    OpDone(usize),
}

/// A parsed trace: header, the record bytes, the end statistics.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Header.
    pub header: Header,
    records: Vec<u8>,
    /// The plugin's statistics (JSON object).
    pub stats: serde_json::Value,
    /// Total bytes of the trace file.
    pub bytes: usize,
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

impl Trace {
    /// Parse a whole trace; the records are checked once here, so [`Trace::events`] cannot fail.
    pub fn parse(bytes: Vec<u8>) -> Result<Trace, TraceError> {
        let total = bytes.len();
        let h = |m: &str| TraceError::Header(m.to_owned());
        if bytes.get(..8) != Some(format::MAGIC.as_slice()) {
            return Err(h("bad magic"));
        }
        let u32_at = |i: usize| bytes.get(i..i + 4).and_then(|s| s.try_into().ok());
        let u64_at = |i: usize| bytes.get(i..i + 8).and_then(|s| s.try_into().ok());
        let version = u32::from_le_bytes(u32_at(8).ok_or_else(|| h("short header"))?);
        if !(format::OLDEST_READABLE_VERSION..=format::FORMAT_VERSION).contains(&version) {
            return Err(h(&format!("format version {version}")));
        }
        let base = u64::from_le_bytes(u64_at(12).ok_or_else(|| h("short header"))?);
        let size = u64::from_le_bytes(u64_at(20).ok_or_else(|| h("short header"))?);
        let qlen = bytes
            .get(28..30)
            .map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
            .ok_or_else(|| h("short header"))?;
        let qemu = bytes
            .get(30..30 + qlen)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .ok_or_else(|| h("short header"))?;
        let start = 30 + qlen;
        // Validate every record and find the end record.
        let mut pos = start;
        let mut prev = 0u64;
        let mut pc = 0u64;
        let stats = loop {
            let at = pos;
            let Some(&tag) = bytes.get(pos) else {
                return Err(TraceError::Truncated(total));
            };
            if tag == format::TAG_END {
                pos += 1;
                let len = varint(&bytes, &mut pos).ok_or(TraceError::Truncated(total))?;
                let json = bytes
                    .get(pos..pos + len as usize)
                    .ok_or(TraceError::Truncated(total))?;
                break serde_json::from_slice(json).map_err(|e| TraceError::Record {
                    at,
                    what: format!("end statistics: {e}"),
                })?;
            }
            match next_record(&bytes, &mut pos, &mut prev, &mut pc) {
                Some(Ok(_)) => {}
                Some(Err(what)) => return Err(TraceError::Record { at, what }),
                None => return Err(TraceError::Truncated(total)),
            }
            if prev >= size {
                return Err(TraceError::Record {
                    at,
                    what: format!("store offset {prev:#x} outside the {size:#x}-byte pmem"),
                });
            }
        };
        let records = bytes[start..].to_vec();
        Ok(Trace {
            header: Header { base, size, qemu },
            records,
            stats,
            bytes: total,
        })
    }

    /// The records in order (the end record excluded).
    pub fn events(&self) -> Events<'_> {
        Events {
            bytes: &self.records,
            pos: 0,
            prev: 0,
            pc: 0,
        }
    }
}

/// Iterator over a trace's records.
pub struct Events<'a> {
    bytes: &'a [u8],
    pos: usize,
    prev: u64,
    pc: u64,
}

impl Iterator for Events<'_> {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        loop {
            if self.bytes.get(self.pos) == Some(&format::TAG_END) {
                return None;
            }
            match next_record(self.bytes, &mut self.pos, &mut self.prev, &mut self.pc)?.ok()? {
                Some(ev) => return Some(ev),
                None => continue,
            }
        }
    }
}

/// Decode the record at `pos`: `None` at the end of the bytes, `Some(Err)` if malformed,
/// `Some(Ok(None))` for a store-site record (it updates `pc`, the PC of later stores).
fn next_record(
    b: &[u8],
    pos: &mut usize,
    prev: &mut u64,
    pc: &mut u64,
) -> Option<Result<Option<Event>, String>> {
    let tag = *b.get(*pos)?;
    *pos += 1;
    let ev = match tag {
        format::TAG_PC => {
            *pc = pc.wrapping_add(format::unzigzag(varint(b, pos)?) as u64);
            return Some(Ok(None));
        }
        t if t & !(format::STORE_NT | 7) == 0 => {
            let len = match t & 7 {
                c @ 0..=4 => 1u8 << c,
                c => return Some(Err(format!("store size code {c}"))),
            };
            let delta = format::unzigzag(varint(b, pos)?);
            let off = prev.wrapping_add(delta as u64);
            let bytes = b.get(*pos..*pos + usize::from(len))?;
            *pos += usize::from(len);
            let mut value = [0u8; 16];
            value[..usize::from(len)].copy_from_slice(bytes);
            *prev = off;
            Event::Store {
                off,
                len,
                value,
                nt: t & format::STORE_NT != 0,
                pc: *pc,
            }
        }
        t if (format::TAG_FLUSH..format::TAG_FLUSH + 3).contains(&t) => {
            let kind = FlushKind::from_code(t - format::TAG_FLUSH)?;
            Event::Flush {
                line: varint(b, pos)?,
                kind,
            }
        }
        t if (format::TAG_FENCE..format::TAG_FENCE + 4).contains(&t) => {
            Event::Fence(FenceKind::from_code(t - format::TAG_FENCE)?)
        }
        t if t == format::TAG_MARKER || t == format::TAG_MARKER + 1 => {
            let op = usize::try_from(varint(b, pos)?).unwrap_or(usize::MAX);
            if t == format::TAG_MARKER {
                Event::OpStart(op)
            } else {
                Event::OpDone(op)
            }
        }
        t => return Some(Err(format!("unknown tag {t:#04x}"))),
    };
    Some(Ok(Some(ev)))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Vec<u8> {
        let mut b = Vec::new();
        format::put_header(&mut b, 0x1_0000_0000, 1 << 20, "10.0.2");
        let (mut prev, mut pc) = (0, 0);
        format::put_pc(&mut b, &mut pc, 0xffff_ffff_8100_1000);
        format::put_store(&mut b, &mut prev, 128, &[1, 2, 3, 4, 5, 6, 7, 8], false);
        format::put_pc(&mut b, &mut pc, 0x40_1000);
        format::put_store(&mut b, &mut prev, 64, &[9; 16], true);
        format::put_flush(&mut b, FlushKind::Clwb, 128);
        format::put_fence(&mut b, FenceKind::Sfence);
        format::put_marker(&mut b, false, 3);
        format::put_marker(&mut b, true, 3);
        format::put_end(&mut b, "{\"stores\":2}");
        b
    }

    #[test]
    fn round_trip() {
        let t = Trace::parse(sample()).expect("parses");
        assert_eq!(t.header.base, 0x1_0000_0000);
        assert_eq!(t.header.qemu, "10.0.2");
        assert_eq!(t.stats["stores"], 2);
        let ev: Vec<Event> = t.events().collect();
        assert_eq!(ev.len(), 6);
        assert!(matches!(
            ev[0],
            Event::Store {
                off: 128,
                len: 8,
                nt: false,
                pc: 0xffff_ffff_8100_1000,
                ..
            }
        ));
        assert!(matches!(
            ev[1],
            Event::Store {
                off: 64,
                len: 16,
                nt: true,
                pc: 0x40_1000,
                ..
            }
        ));
        assert_eq!(
            ev[2],
            Event::Flush {
                line: 2,
                kind: FlushKind::Clwb
            }
        );
        assert_eq!(ev[3], Event::Fence(FenceKind::Sfence));
        assert_eq!(ev[4], Event::OpStart(3));
        assert_eq!(ev[5], Event::OpDone(3));
    }

    #[test]
    fn version_1_traces_are_read_with_pc_0() {
        let mut b = Vec::new();
        format::put_header(&mut b, 0, 1 << 20, "9.2");
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        let mut prev = 0;
        format::put_store(&mut b, &mut prev, 8, &[1; 8], false);
        format::put_end(&mut b, "{}");

        let ev: Vec<Event> = Trace::parse(b).expect("v1 parses").events().collect();

        assert!(matches!(ev[..], [Event::Store { off: 8, pc: 0, .. }]));
    }

    #[test]
    fn truncated_and_garbage_traces_are_refused() {
        let full = sample();
        for cut in [10, 40, full.len() - 5] {
            assert!(Trace::parse(full[..cut].to_vec()).is_err(), "cut {cut}");
        }
        assert!(matches!(
            Trace::parse(full[..full.len() - 14].to_vec()),
            Err(TraceError::Truncated(_))
        ));
        let mut bad = full.clone();
        bad[8] = 9;
        assert!(matches!(
            Trace::parse(bad.clone()),
            Err(TraceError::Header(_))
        ));
        bad[8] = 3;
        assert!(matches!(Trace::parse(bad), Err(TraceError::Header(_))));
    }
}
