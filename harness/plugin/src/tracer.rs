//! The trace writer and the address bookkeeping behind it (no QEMU calls): pmem filter,
//! the vaddr→paddr page map learned from stores (to place flushes), pending-work flags that
//! let no-op fences be elided, statistics for the end record.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;

use crate::format::{self, FenceKind, FlushKind};

/// Bytes buffered before a write to the trace file.
const BUFFER: usize = 1 << 20;
/// Page size of the vaddr→paddr map.
pub const PAGE_SHIFT: u32 = 12;
/// First address of the upper (kernel) half.
const KERNEL_HALF: u64 = 1 << 63;

/// Counters written into the end record.
#[derive(Debug, Default)]
pub struct Stats {
    pub stores: u64,
    pub nt_stores: u64,
    pub split_stores: u64,
    pub unsized_stores: u64,
    pub flushes: [u64; 3],
    pub fences: [u64; 4],
    pub elided_fences: u64,
    pub flush_via_delta: u64,
    pub flush_unresolved: u64,
    pub flush_unresolved_kernel: u64,
    pub flush_outside: u64,
    pub markers: u64,
    pub tlb_misses: u64,
    pub tlb_flushes: u64,
    pub bytes: u64,
}

/// Everything the plugin writes, and what it learned on the way.
pub struct Tracer {
    base: u64,
    size: u64,
    file: File,
    buf: Vec<u8>,
    prev_off: u64,
    prev_pc: u64,
    site_pc: u64,
    pages: HashMap<u64, u64>,
    deltas: HashMap<u64, u64>,
    pending_nt: bool,
    pending_flush: bool,
    /// Statistics.
    pub stats: Stats,
    /// The first write error, reported at exit.
    pub error: Option<String>,
}

impl Tracer {
    /// Start a trace in `file` for pmem `[base, base+size)`.
    pub fn new(file: File, base: u64, size: u64, qemu: &str) -> Tracer {
        let mut buf = Vec::with_capacity(BUFFER + 64);
        format::put_header(&mut buf, base, size, qemu);
        Tracer {
            base,
            size,
            file,
            buf,
            prev_off: 0,
            prev_pc: 0,
            site_pc: 0,
            pages: HashMap::new(),
            deltas: HashMap::new(),
            pending_nt: false,
            pending_flush: false,
            stats: Stats::default(),
            error: None,
        }
    }

    /// Is `paddr` in the pmem?
    pub fn in_pmem(&self, paddr: u64) -> bool {
        paddr.wrapping_sub(self.base) < self.size
    }

    fn spill(&mut self) {
        if self.buf.len() >= BUFFER {
            self.write_out();
        }
    }

    fn write_out(&mut self) {
        if let Err(e) = self.file.write_all(&self.buf) {
            self.error.get_or_insert_with(|| e.to_string());
        }
        self.stats.bytes += self.buf.len() as u64;
        self.buf.clear();
    }

    /// The PC of the instruction whose stores follow (written into the trace with the next
    /// store, only when it differs from the last store's).
    pub fn site(&mut self, pc: u64) {
        self.site_pc = pc;
    }

    /// A store of `value` at guest `vaddr` / pmem `paddr`.
    pub fn store(&mut self, vaddr: u64, paddr: u64, value: &[u8], nt: bool) {
        if self.site_pc != self.prev_pc {
            format::put_pc(&mut self.buf, &mut self.prev_pc, self.site_pc);
        }
        let vpage = vaddr >> PAGE_SHIFT;
        let ppage = paddr >> PAGE_SHIFT;
        if self.pages.insert(vpage, ppage) != Some(ppage) && vaddr >= KERNEL_HALF {
            *self.deltas.entry(vpage.wrapping_sub(ppage)).or_insert(0) += 1;
        }
        let off = paddr - self.base;
        if format::put_store(&mut self.buf, &mut self.prev_off, off, value, nt) {
            self.stats.stores += 1;
            if nt {
                self.stats.nt_stores += 1;
                self.pending_nt = true;
            }
        } else {
            self.stats.unsized_stores += 1;
        }
        self.spill();
    }

    /// The pmem physical address behind flushed virtual address `vaddr`, if known.
    fn translate(&mut self, vaddr: u64) -> Option<u64> {
        let off = vaddr & ((1 << PAGE_SHIFT) - 1);
        if let Some(&ppage) = self.pages.get(&(vaddr >> PAGE_SHIFT)) {
            return Some((ppage << PAGE_SHIFT) | off);
        }
        if vaddr >= KERNEL_HALF {
            // The kernel's direct map: the offset most kernel pmem pages were stored through.
            if let Some((&delta, _)) = self.deltas.iter().max_by_key(|(_, &n)| n) {
                let ppage = (vaddr >> PAGE_SHIFT).wrapping_sub(delta);
                let paddr = (ppage << PAGE_SHIFT) | off;
                if self.in_pmem(paddr) {
                    self.stats.flush_via_delta += 1;
                    return Some(paddr);
                }
            }
        }
        None
    }

    /// A flush of the line holding `vaddr`.
    pub fn flush(&mut self, kind: FlushKind, vaddr: u64) {
        let Some(paddr) = self.translate(vaddr) else {
            self.stats.flush_unresolved += 1;
            if vaddr >= KERNEL_HALF {
                self.stats.flush_unresolved_kernel += 1;
            }
            return;
        };
        if !self.in_pmem(paddr) {
            self.stats.flush_outside += 1;
            return;
        }
        self.stats.flushes[kind as usize] += 1;
        format::put_flush(&mut self.buf, kind, paddr - self.base);
        if kind != FlushKind::Clflush {
            self.pending_flush = true;
        }
        self.spill();
    }

    /// A fence; written only when it orders something the trace holds.
    pub fn fence(&mut self, kind: FenceKind) {
        let effective = match kind {
            FenceKind::Sfence | FenceKind::Mfence => self.pending_flush || self.pending_nt,
            FenceKind::Locked => self.pending_flush,
            FenceKind::Wbinvd => true,
        };
        if !effective {
            self.stats.elided_fences += 1;
            return;
        }
        self.stats.fences[kind as usize] += 1;
        self.pending_flush = false;
        if kind != FenceKind::Locked {
            self.pending_nt = false;
        }
        format::put_fence(&mut self.buf, kind);
        self.spill();
    }

    /// An op marker.
    pub fn marker(&mut self, done: bool, op: u64) {
        self.stats.markers += 1;
        format::put_marker(&mut self.buf, done, op);
        self.spill();
    }

    /// Write the end record and flush the file.
    pub fn finish(&mut self) {
        let s = &self.stats;
        let json = format!(
            concat!(
                "{{\"stores\":{},\"nt_stores\":{},\"split_stores\":{},\"unsized_stores\":{},",
                "\"clwb\":{},\"clflushopt\":{},\"clflush\":{},\"sfence\":{},\"mfence\":{},",
                "\"locked\":{},\"wbinvd\":{},\"elided_fences\":{},\"flush_via_delta\":{},",
                "\"flush_unresolved\":{},\"flush_unresolved_kernel\":{},\"flush_outside\":{},",
                "\"markers\":{},\"tlb_misses\":{},\"tlb_flushes\":{},\"pages\":{},\"error\":{}}}"
            ),
            s.stores,
            s.nt_stores,
            s.split_stores,
            s.unsized_stores,
            s.flushes[0],
            s.flushes[1],
            s.flushes[2],
            s.fences[0],
            s.fences[1],
            s.fences[2],
            s.fences[3],
            s.elided_fences,
            s.flush_via_delta,
            s.flush_unresolved,
            s.flush_unresolved_kernel,
            s.flush_outside,
            s.markers,
            s.tlb_misses,
            s.tlb_flushes,
            self.pages.len(),
            self.error
                .as_ref()
                .map_or_else(|| "null".to_owned(), |e| format!("{e:?}")),
        );
        format::put_end(&mut self.buf, &json);
        self.write_out();
        let _ = self.file.flush();
        let _ = self.file.sync_data();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracer(name: &str) -> (Tracer, std::path::PathBuf) {
        let path =
            std::env::temp_dir().join(format!("powercut-tracer-{name}-{}", std::process::id()));
        let file = File::create(&path).expect("create");
        (Tracer::new(file, 0x1_0000_0000, 1 << 20, "test"), path)
    }

    #[test]
    fn flushes_are_placed_through_learned_pages_and_idle_fences_elided() {
        let (mut t, path) = tracer("flush");
        t.fence(FenceKind::Sfence); // nothing pending: elided
        t.store(0xffff_0000_1234_5008, 0x1_0000_3008, &[1; 8], false);
        t.flush(FlushKind::Clwb, 0xffff_0000_1234_5010);
        t.fence(FenceKind::Locked);
        t.fence(FenceKind::Locked); // nothing pending any more
        t.flush(FlushKind::Clwb, 0x7fff_0000_0000); // never stored through: unresolved
        t.finish();
        let bytes = std::fs::read(&path).expect("read");
        let _ = std::fs::remove_file(&path);

        assert_eq!(t.stats.elided_fences, 2);
        assert_eq!(t.stats.fences[FenceKind::Locked as usize], 1);
        assert_eq!(t.stats.flushes[FlushKind::Clwb as usize], 1);
        assert_eq!(t.stats.flush_unresolved, 1);
        let mut flush = Vec::new();
        format::put_flush(&mut flush, FlushKind::Clwb, 0x3000);
        assert!(bytes.windows(flush.len()).any(|w| w == flush.as_slice()));
    }

    #[test]
    fn a_store_site_record_is_written_only_when_the_pc_changes() {
        let (mut t, path) = tracer("site");
        t.site(0xffff_ffff_8123_4567);
        t.store(0xffff_0000_1234_5000, 0x1_0000_3000, &[1; 8], false);
        t.store(0xffff_0000_1234_5008, 0x1_0000_3008, &[1; 8], false);
        t.site(0x40_1000);
        t.store(0x7000_0000_0000, 0x1_0000_4000, &[2; 8], false);
        t.finish();
        let bytes = std::fs::read(&path).expect("read");
        let _ = std::fs::remove_file(&path);

        let (mut expect, mut prev_off, mut prev_pc) = (Vec::new(), 0, 0);
        format::put_header(&mut expect, 0x1_0000_0000, 1 << 20, "test");
        format::put_pc(&mut expect, &mut prev_pc, 0xffff_ffff_8123_4567);
        format::put_store(&mut expect, &mut prev_off, 0x3000, &[1; 8], false);
        format::put_store(&mut expect, &mut prev_off, 0x3008, &[1; 8], false);
        format::put_pc(&mut expect, &mut prev_pc, 0x40_1000);
        format::put_store(&mut expect, &mut prev_off, 0x4000, &[2; 8], false);
        assert_eq!(bytes[..expect.len()], expect[..]);
    }

    #[test]
    fn kernel_flushes_fall_back_to_the_learned_direct_map_offset() {
        let (mut t, path) = tracer("delta");
        let delta = 0xff11_0000_0000_0000u64;
        t.store(delta + 0x1_0000_5000, 0x1_0000_5000, &[2; 8], true);
        t.flush(FlushKind::Clflushopt, delta + 0x1_0000_9040);
        t.fence(FenceKind::Sfence);
        t.finish();
        let _ = std::fs::remove_file(&path);

        assert_eq!(t.stats.flush_via_delta, 1);
        assert_eq!(t.stats.flushes[FlushKind::Clflushopt as usize], 1);
        assert_eq!(t.stats.fences[FenceKind::Sfence as usize], 1);
        assert_eq!(t.stats.nt_stores, 1);
    }
}
