//! The QEMU side of kernel coverage (`cov=PATH`): the counter scoreboard, the translation
//! callbacks that give each kernel block an inline counter (and, in coverage-only mode,
//! find the agent's `cpuid` markers), the marker copies and the file written at exit. The
//! bookkeeping itself is [`crate::coverage`]'s.

use std::sync::atomic::{AtomicPtr, Ordering::Relaxed};
use std::sync::Mutex;

use qemu_plugin_sys::*;

use crate::coverage::{self, Coverage};
use crate::decode::decode;
use crate::format;

/// Coverage state and where to write it (`cov=`), when asked for.
static COVERAGE: Mutex<Option<(Coverage, String)>> = Mutex::new(None);
/// The scoreboard of the coverage counters (one element of [`coverage::SLOTS`] u64 per vCPU).
static SCORE: AtomicPtr<qemu_plugin_scoreboard> = AtomicPtr::new(std::ptr::null_mut());

/// Set coverage up to write to `path` (created now, so a bad path fails the start).
pub fn install(path: String) -> Result<(), String> {
    std::fs::File::create(&path).map_err(|e| format!("cannot create {path}: {e}"))?;
    // SAFETY: a plain allocation by QEMU, kept for the plugin's life.
    let score = unsafe { qemu_plugin_scoreboard_new(coverage::SLOTS * 8) };
    if score.is_null() {
        return Err("no scoreboard for the coverage counters".into());
    }
    SCORE.store(score, Relaxed);
    if let Ok(mut g) = COVERAGE.lock() {
        *g = Some((Coverage::default(), path));
    }
    Ok(())
}

/// An op marker ran (`done`: the op's end).
pub fn marker(done: bool) {
    with_coverage(|c, _, counts| c.marker(done, counts));
}

/// At exit: write the coverage file; a failure is said.
pub fn write_out() {
    with_coverage(|c, path, counts| {
        let written = std::fs::File::create(path).and_then(|mut f| {
            c.write(&mut f, counts)?;
            f.sync_data()
        });
        if let Err(e) = written {
            crate::say(&format!("writing the coverage to {path} failed: {e}"));
        }
    });
}

/// Run `f` on the coverage state with the counters of the slots in use.
pub fn with_coverage(f: impl FnOnce(&mut Coverage, &str, &[u64])) {
    let Ok(mut g) = COVERAGE.lock() else { return };
    let Some((c, path)) = g.as_mut() else { return };
    let score = SCORE.load(Relaxed);
    if score.is_null() {
        return f(c, path, &[]);
    }
    // SAFETY: the scoreboard lives for the plugin's life; vCPU 0's element holds SLOTS u64
    // (`-smp 1`: the only vCPU, and this runs on its thread or at exit).
    let counts = unsafe {
        let p = qemu_plugin_scoreboard_find(score, 0) as *const u64;
        if p.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts(p, c.used().min(coverage::SLOTS))
        }
    };
    f(c, path, counts);
}

/// A translated block: a kernel block gets a counter; a user block is searched for the
/// agent's `cpuid` markers (coverage only: the tracer's decoder does that otherwise).
///
/// # Safety
/// `tb` must be the block of the current translation callback.
pub unsafe fn cover_tb(tb: *mut qemu_plugin_tb) {
    // SAFETY: `tb` and its instructions are valid during the translation callback.
    unsafe {
        let vaddr = qemu_plugin_tb_vaddr(tb);
        let n = qemu_plugin_tb_n_insns(tb);
        if vaddr < format::coverage::KERNEL_START {
            return;
        }
        let mut end = vaddr;
        if n > 0 {
            let last = qemu_plugin_tb_get_insn(tb, n - 1);
            end = qemu_plugin_insn_vaddr(last).wrapping_add(qemu_plugin_insn_size(last) as u64);
        }
        let bytes = u32::try_from(end.wrapping_sub(vaddr)).unwrap_or(u32::MAX);
        let insns = u32::try_from(n).unwrap_or(u32::MAX);
        let mut slot = None;
        if let Ok(mut g) = COVERAGE.lock() {
            if let Some((c, _)) = g.as_mut() {
                slot = c.translated(vaddr, insns, bytes);
            }
        }
        let score = SCORE.load(Relaxed);
        if let (Some(s), false) = (slot, score.is_null()) {
            let entry = qemu_plugin_u64 {
                score,
                offset: s * 8,
            };
            qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(
                tb,
                qemu_plugin_op::QEMU_PLUGIN_INLINE_ADD_U64,
                entry,
                1,
            );
        }
    }
}

/// Coverage only: register the marker callback on user-space `cpuid` instructions.
///
/// # Safety
/// `tb` must be the block of the current translation callback.
unsafe fn find_markers(tb: *mut qemu_plugin_tb) {
    // SAFETY: `tb` and its instructions are valid during the translation callback.
    unsafe {
        if qemu_plugin_tb_vaddr(tb) >= format::coverage::KERNEL_START {
            return;
        }
        for i in 0..qemu_plugin_tb_n_insns(tb) {
            let insn = qemu_plugin_tb_get_insn(tb, i);
            let mut buf = [0u8; 16];
            let len = qemu_plugin_insn_data(insn, buf.as_mut_ptr().cast(), buf.len());
            if decode(&buf[..len.min(16)], qemu_plugin_insn_vaddr(insn)).cpuid {
                qemu_plugin_register_vcpu_insn_exec_cb(
                    insn,
                    Some(crate::on_cpuid),
                    qemu_plugin_cb_flags::QEMU_PLUGIN_CB_R_REGS,
                    std::ptr::null_mut(),
                );
            }
        }
    }
}

pub unsafe extern "C" fn on_tb_coverage_only(_id: qemu_plugin_id_t, tb: *mut qemu_plugin_tb) {
    // SAFETY: called by QEMU with the block being translated.
    unsafe {
        cover_tb(tb);
        find_markers(tb);
    }
}
