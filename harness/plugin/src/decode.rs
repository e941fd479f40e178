//! x86-64 instruction classification at translation time (pure): which instructions flush a
//! cache line (and their memory operand), fence, store non-temporally, mark an op (`cpuid`),
//! or change address translation. Only the encodings the cache model needs are decoded;
//! everything else is [`Decoded::default`].

use crate::format::{FenceKind, FlushKind};

/// A `[base + index*scale + disp]` memory operand, with the registers numbered as in the
/// ModRM encoding (0 rax, 1 rcx, …, 15 r15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemOperand {
    /// Base register.
    pub base: Option<u8>,
    /// Index register.
    pub index: Option<u8>,
    /// Scale (1, 2, 4, 8).
    pub scale: u8,
    /// Displacement; for RIP-relative operands, the absolute address (resolved at decode).
    pub disp: i64,
    /// FS (`Some(false)`) or GS (`Some(true)`) segment override.
    pub gs: Option<bool>,
    /// 32-bit address size (0x67 prefix).
    pub addr32: bool,
}

/// What the cache model needs to know about one instruction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decoded {
    /// A non-temporal store (movnti, movntdq, movntps/pd, maskmov*, movdiri, movdir64b).
    pub nt_store: bool,
    /// A cache-line flush and its operand.
    pub flush: Option<(FlushKind, MemOperand)>,
    /// A fence (or a locked read-modify-write, or wbinvd).
    pub fence: Option<FenceKind>,
    /// `cpuid` (a possible op marker).
    pub cpuid: bool,
    /// Changes address translation (mov to CR, invlpg, invpcid, wrmsr, invlpgb, tlbsync).
    pub tlb_change: bool,
}

struct Prefixes {
    lock: bool,
    p66: bool,
    f2: bool,
    f3: bool,
    gs: Option<bool>,
    addr32: bool,
    rex: u8,
}

/// Decode the instruction in `bytes` (up to 15 bytes) located at `vaddr`.
pub fn decode(bytes: &[u8], vaddr: u64) -> Decoded {
    let mut d = Decoded::default();
    let mut p = Prefixes {
        lock: false,
        p66: false,
        f2: false,
        f3: false,
        gs: None,
        addr32: false,
        rex: 0,
    };
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            0xF0 => p.lock = true,
            0xF2 => p.f2 = true,
            0xF3 => p.f3 = true,
            0x66 => p.p66 = true,
            0x67 => p.addr32 = true,
            0x64 => p.gs = Some(false),
            0x65 => p.gs = Some(true),
            0x2E | 0x36 | 0x3E | 0x26 => {}
            _ => break,
        }
        i += 1;
    }
    if let Some(&b) = bytes.get(i) {
        if b & 0xF0 == 0x40 {
            p.rex = b;
            i += 1;
        }
    }
    if p.lock {
        d.fence = Some(FenceKind::Locked);
    }
    let Some(&op) = bytes.get(i) else {
        return d;
    };
    match op {
        // VEX: only the non-temporal stores matter.
        0xC4 | 0xC5 => {
            let (map, opcode) = if op == 0xC5 {
                (1, bytes.get(i + 2).copied())
            } else {
                (
                    bytes.get(i + 1).map_or(0, |b| b & 0x1F),
                    bytes.get(i + 3).copied(),
                )
            };
            if map == 1 && matches!(opcode, Some(0x2B | 0xE7 | 0xF7)) {
                d.nt_store = true;
            }
        }
        0x86 | 0x87 if bytes.get(i + 1).is_some_and(|m| m >> 6 != 3) => {
            d.fence = Some(FenceKind::Locked);
        }
        0x0F => decode_0f(bytes, i + 1, vaddr, &p, &mut d),
        _ => {}
    }
    d
}

fn decode_0f(bytes: &[u8], i: usize, vaddr: u64, p: &Prefixes, d: &mut Decoded) {
    let Some(&op) = bytes.get(i) else { return };
    let modrm = bytes.get(i + 1).copied();
    let md = modrm.map(|m| (m >> 6, (m >> 3) & 7));
    match op {
        0x09 => d.fence = Some(FenceKind::Wbinvd),
        0xA2 => d.cpuid = true,
        0x22 | 0x30 => d.tlb_change = true,
        0x01 => match md {
            Some((m, 7)) if m != 3 => d.tlb_change = true,
            _ if matches!(modrm, Some(0xFE | 0xFF)) => d.tlb_change = true,
            _ => {}
        },
        0x38 => match bytes.get(i + 1) {
            Some(0x82) if p.p66 => d.tlb_change = true,
            Some(0xF8) if p.p66 => d.nt_store = true,
            Some(0xF9) if !p.p66 && !p.f2 && !p.f3 => d.nt_store = true,
            _ => {}
        },
        0xC3 | 0x2B | 0xE7 | 0xF7 => d.nt_store = true,
        0xAE => {
            let Some((m, reg)) = md else { return };
            let plain = !p.p66 && !p.f2 && !p.f3;
            if m == 3 {
                match reg {
                    6 if plain => d.fence = Some(FenceKind::Mfence),
                    7 if plain => d.fence = Some(FenceKind::Sfence),
                    _ => {}
                }
                return;
            }
            let kind = match reg {
                7 if p.p66 => FlushKind::Clflushopt,
                7 if plain => FlushKind::Clflush,
                6 if p.p66 => FlushKind::Clwb,
                _ => return,
            };
            if let Some(mem) = mem_operand(bytes, i + 1, vaddr, p) {
                d.flush = Some((kind, mem));
            }
        }
        _ => {}
    }
}

/// Parse the ModRM (+ SIB + displacement) memory operand at `bytes[at]`. RIP-relative
/// operands are resolved against the end of the instruction (the operand is the last part
/// of every instruction decoded here).
fn mem_operand(bytes: &[u8], at: usize, vaddr: u64, p: &Prefixes) -> Option<MemOperand> {
    let modrm = *bytes.get(at)?;
    let md = modrm >> 6;
    let rm = modrm & 7;
    let rex_b = (p.rex & 1) << 3;
    let rex_x = (p.rex & 2) << 2;
    let mut at = at + 1;
    let mut mem = MemOperand {
        base: None,
        index: None,
        scale: 1,
        disp: 0,
        gs: p.gs,
        addr32: p.addr32,
    };
    let mut rip_rel = false;
    if rm == 4 {
        let sib = *bytes.get(at)?;
        at += 1;
        mem.scale = 1 << (sib >> 6);
        let index = ((sib >> 3) & 7) | rex_x;
        if index != 4 {
            mem.index = Some(index);
        }
        if sib & 7 == 5 && md == 0 {
            let v = i32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
            mem.disp = i64::from(v);
            at += 4;
        } else {
            mem.base = Some((sib & 7) | rex_b);
        }
    } else if rm == 5 && md == 0 {
        rip_rel = true;
    } else {
        mem.base = Some(rm | rex_b);
    }
    match md {
        0 if rip_rel => {
            let v = i32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
            at += 4;
            let next = vaddr.wrapping_add(at as u64);
            mem.disp = next.wrapping_add(i64::from(v) as u64) as i64;
        }
        1 => {
            mem.disp = i64::from(*bytes.get(at)? as i8);
        }
        2 => {
            let v = i32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
            mem.disp = i64::from(v);
        }
        _ => {}
    }
    Some(mem)
}

impl MemOperand {
    /// The effective address given a register reader (`reg(n)` for n in 0..16) and the
    /// FS/GS bases.
    pub fn address(&self, reg: impl Fn(u8) -> Option<u64>, seg_base: Option<u64>) -> Option<u64> {
        let mut a = self.disp as u64;
        if let Some(b) = self.base {
            a = a.wrapping_add(reg(b)?);
        }
        if let Some(x) = self.index {
            a = a.wrapping_add(reg(x)?.wrapping_mul(u64::from(self.scale)));
        }
        if self.gs.is_some() {
            a = a.wrapping_add(seg_base?);
        }
        if self.addr32 {
            a &= 0xFFFF_FFFF;
        }
        Some(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_and_flushes() {
        assert_eq!(
            decode(&[0x0F, 0xAE, 0xF8], 0).fence,
            Some(FenceKind::Sfence)
        );
        assert_eq!(
            decode(&[0x0F, 0xAE, 0xF0], 0).fence,
            Some(FenceKind::Mfence)
        );
        assert_eq!(decode(&[0x0F, 0xAE, 0xE8], 0).fence, None); // lfence
        assert_eq!(
            decode(&[0xF0, 0x48, 0x0F, 0xB1, 0x17], 0).fence,
            Some(FenceKind::Locked)
        );
        assert_eq!(
            decode(&[0x48, 0x87, 0x07], 0).fence,
            Some(FenceKind::Locked)
        );
        assert_eq!(decode(&[0x48, 0x87, 0xC7], 0).fence, None);
        // clwb (%rdi)
        let d = decode(&[0x66, 0x0F, 0xAE, 0x37], 0);
        let (k, m) = d.flush.expect("clwb");
        assert_eq!(k, FlushKind::Clwb);
        assert_eq!((m.base, m.index, m.disp), (Some(7), None, 0));
        // clflushopt 0x40(%r8)
        let d = decode(&[0x66, 0x41, 0x0F, 0xAE, 0x78, 0x40], 0);
        let (k, m) = d.flush.expect("clflushopt");
        assert_eq!(k, FlushKind::Clflushopt);
        assert_eq!((m.base, m.disp), (Some(8), 0x40));
        // clflush (%rax,%rcx,8)
        let (k, m) = decode(&[0x0F, 0xAE, 0x3C, 0xC8], 0).flush.expect("clflush");
        assert_eq!(k, FlushKind::Clflush);
        assert_eq!((m.base, m.index, m.scale), (Some(0), Some(1), 8));
        // xsaveopt (%rdi) is not a flush
        assert_eq!(decode(&[0x0F, 0xAE, 0x37], 0).flush, None);
    }

    #[test]
    fn rip_relative_and_addresses() {
        // clwb 0x10(%rip) at 0x1000, 8 bytes long
        let (_, m) = decode(&[0x66, 0x0F, 0xAE, 0x35, 0x10, 0, 0, 0], 0x1000)
            .flush
            .expect("clwb");
        assert_eq!(m.address(|_| None, None), Some(0x1018));
        let (_, m) = decode(&[0x66, 0x0F, 0xAE, 0x74, 0x8F, 0xF0], 0)
            .flush
            .expect("clwb -0x10(%rdi,%rcx,4)");
        let regs = |r: u8| {
            Some(match r {
                7 => 0x1000,
                1 => 3,
                _ => 0,
            })
        };
        assert_eq!(m.address(regs, None), Some(0x1000 + 12 - 0x10));
    }

    #[test]
    fn non_temporal_and_special() {
        assert!(decode(&[0x48, 0x0F, 0xC3, 0x07], 0).nt_store); // movnti
        assert!(decode(&[0x66, 0x0F, 0xE7, 0x07], 0).nt_store); // movntdq
        assert!(decode(&[0xC5, 0xFD, 0xE7, 0x07], 0).nt_store); // vmovntdq
        assert!(!decode(&[0x48, 0x89, 0x07], 0).nt_store); // mov
        assert!(decode(&[0x0F, 0xA2], 0).cpuid);
        assert!(decode(&[0x0F, 0x22, 0xD8], 0).tlb_change); // mov %rax,%cr3
        assert!(decode(&[0x0F, 0x01, 0x38], 0).tlb_change); // invlpg (%rax)
        assert!(decode(&[0x66, 0x0F, 0x38, 0x82, 0x07], 0).tlb_change); // invpcid
        assert!(decode(&[0x0F, 0x30], 0).tlb_change); // wrmsr
        assert!(!decode(&[0x0F, 0x01, 0xF8], 0).tlb_change); // swapgs
        assert_eq!(decode(&[0x0F, 0x09], 0).fence, Some(FenceKind::Wbinvd));
    }
}
