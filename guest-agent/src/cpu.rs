//! The x86_64 instructions the agent issues itself: `cpuid`, the cache-line flushes
//! (`clwb`, `clflushopt`, `clflush`) and `sfence`. All inline assembly of the agent lives here.
//!
//! The flush instruction is chosen once per process from CPUID leaf 7 (clwb, else clflushopt)
//! and falls back to clflush, which every x86_64 CPU has. The mnemonics assemble to the usual
//! encodings (`66 0F AE /6`, `66 0F AE /7`, `0F AE /7`), which the cache-model TCG plugin
//! decodes from the instruction bytes.

use std::sync::OnceLock;

/// Size of a CPU cache line: the unit the flush instructions write back.
pub const CACHE_LINE: usize = 64;

/// CPUID.(EAX=7,ECX=0):EBX bit for CLFLUSHOPT.
const LEAF7_EBX_CLFLUSHOPT: u32 = 1 << 23;
/// CPUID.(EAX=7,ECX=0):EBX bit for CLWB.
const LEAF7_EBX_CLWB: u32 = 1 << 24;

/// The instruction used to write back one cache line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushInsn {
    /// `clwb`: write back, the line may stay cached.
    Clwb,
    /// `clflushopt`: write back and invalidate, weakly ordered.
    Clflushopt,
    /// `clflush`: write back and invalidate, ordered with other stores.
    Clflush,
}

impl FlushInsn {
    /// The best instruction given CPUID.(EAX=7,ECX=0):EBX.
    pub fn from_leaf7_ebx(ebx: u32) -> FlushInsn {
        if ebx & LEAF7_EBX_CLWB != 0 {
            FlushInsn::Clwb
        } else if ebx & LEAF7_EBX_CLFLUSHOPT != 0 {
            FlushInsn::Clflushopt
        } else {
            FlushInsn::Clflush
        }
    }

    /// The instruction this CPU supports (detected once), or `None` off x86_64.
    pub fn detect() -> Option<FlushInsn> {
        static DETECTED: OnceLock<Option<FlushInsn>> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            if !cfg!(target_arch = "x86_64") {
                return None;
            }
            let max_leaf = cpuid(0, 0)[0];
            let ebx = if max_leaf >= 7 { cpuid(7, 0)[1] } else { 0 };
            Some(FlushInsn::from_leaf7_ebx(ebx))
        })
    }

    /// The mnemonic.
    pub fn name(self) -> &'static str {
        match self {
            FlushInsn::Clwb => "clwb",
            FlushInsn::Clflushopt => "clflushopt",
            FlushInsn::Clflush => "clflush",
        }
    }
}

/// Execute `cpuid` with EAX = `leaf`, ECX = `subleaf`; returns `[eax, ebx, ecx, edx]`.
/// Off x86_64 it does nothing and returns zeros.
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        let (eax, ebx, ecx, edx): (u32, u32, u32, u32);
        // SAFETY: cpuid is unprivileged and present on every x86_64 CPU; it reads no memory
        // and writes only eax/ebx/ecx/edx, all declared as outputs. rbx is reserved by LLVM,
        // so it is saved in a scratch register and swapped back afterwards.
        unsafe {
            core::arch::asm!(
                "mov {tmp:r}, rbx",
                "cpuid",
                "xchg {tmp:r}, rbx",
                tmp = out(reg) ebx,
                inout("eax") leaf => eax,
                inout("ecx") subleaf => ecx,
                out("edx") edx,
                options(nostack, preserves_flags),
            );
        }
        [eax, ebx, ecx, edx]
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (leaf, subleaf);
        [0; 4]
    }
}

/// Write back every cache line that overlaps `[start, start + len)` with `insn`, then
/// `sfence`. With `len == 0` only the fence is executed.
///
/// # Safety
/// Every byte of `[start, start + len)` must be mapped and readable in this process without
/// faulting (a flush faults like a load: an unmapped page gives SIGSEGV, a file page past
/// EOF gives SIGBUS).
#[cfg(target_arch = "x86_64")]
pub unsafe fn flush_range(insn: FlushInsn, start: *const u8, len: usize) {
    let first = (start as usize) & !(CACHE_LINE - 1);
    let end = (start as usize).saturating_add(len);
    let mut line = first;
    while line < end {
        let p = line as *const u8;
        // SAFETY: `line` is the start of a cache line that overlaps the caller's range, so
        // the line lies in a page of that range, which the caller guarantees is mapped. The
        // asm blocks are not `nomem`, so the compiler keeps earlier stores before them.
        unsafe {
            match insn {
                FlushInsn::Clwb => {
                    core::arch::asm!("clwb [{0}]", in(reg) p, options(nostack, preserves_flags))
                }
                FlushInsn::Clflushopt => core::arch::asm!(
                    "clflushopt [{0}]",
                    in(reg) p,
                    options(nostack, preserves_flags)
                ),
                FlushInsn::Clflush => {
                    core::arch::asm!("clflush [{0}]", in(reg) p, options(nostack, preserves_flags))
                }
            }
        }
        line += CACHE_LINE;
    }
    sfence();
}

/// `sfence`: orders the preceding flushes and stores before any later store.
#[cfg(target_arch = "x86_64")]
pub fn sfence() {
    // SAFETY: sfence touches no registers or memory; it only orders stores.
    unsafe { core::arch::asm!("sfence", options(nostack, preserves_flags)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clwb_is_preferred_then_clflushopt_then_clflush() {
        assert_eq!(
            FlushInsn::from_leaf7_ebx(LEAF7_EBX_CLWB | LEAF7_EBX_CLFLUSHOPT),
            FlushInsn::Clwb
        );
        assert_eq!(
            FlushInsn::from_leaf7_ebx(LEAF7_EBX_CLFLUSHOPT),
            FlushInsn::Clflushopt
        );
        assert_eq!(FlushInsn::from_leaf7_ebx(0), FlushInsn::Clflush);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_flush_instruction_runs_on_this_cpu_if_supported() {
        let buf = [7u8; 3 * CACHE_LINE];
        let best = FlushInsn::detect();
        let supported: &[FlushInsn] = match best {
            Some(FlushInsn::Clwb) => &[FlushInsn::Clwb, FlushInsn::Clflushopt, FlushInsn::Clflush],
            Some(FlushInsn::Clflushopt) => &[FlushInsn::Clflushopt, FlushInsn::Clflush],
            _ => &[FlushInsn::Clflush],
        };
        for &insn in supported {
            // SAFETY: `buf` is a live stack array; the range lies inside it.
            unsafe { flush_range(insn, buf.as_ptr().wrapping_add(5), 2 * CACHE_LINE) };
        }
        assert_eq!(buf[70], 7);
    }

    #[test]
    fn cpuid_leaf0_reports_a_vendor() {
        let [max, ebx, ecx, edx] = cpuid(0, 0);
        if cfg!(target_arch = "x86_64") {
            assert!(max >= 1);
            assert_ne!([ebx, ecx, edx], [0, 0, 0]);
        }
    }
}
