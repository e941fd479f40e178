//! powercut's QEMU TCG plugin (API v4, QEMU 10.0): traces every guest store into the NVDIMM
//! (guest-physical address, size, value, non-temporal or not), every clwb/clflushopt/clflush
//! of an NVDIMM line, the fences that order them, and the agent's `cpuid` op markers, into
//! the compact binary trace of the `powercut-trace-format` crate (`harness/trace-format`).
//!
//! Arguments: `base=0x100000000,size=0x10000000,out=/path/trace[,qemu=10.0.2][,cov=PATH]` (the
//! NVDIMM's guest-physical range; `file` is not usable as an argument name: QEMU takes it as
//! the plugin path), or `cov=PATH` alone (coverage only: the snapshot model's runs). Needs
//! `-smp 1`: one vCPU thread, so callbacks never run concurrently.
//!
//! With `cov=PATH` it also records kernel coverage ([`coverage`]): each translated kernel
//! block with an inline execution counter, phases split at the op markers, written at exit.
//!
//! Each store carries its instruction's guest PC (a store-site record whenever it changes),
//! so a lost line can be blamed on the code that wrote it.
//!
//! Cost: a store callback on every guest store, with a 4-entry vaddr-page cache in front of
//! `qemu_plugin_get_hwaddr` (the lookup dominates otherwise), cleared when the guest changes
//! address translation (mov to CR, invlpg, invpcid, wrmsr).

use trace_format as format;

mod coverage;
mod coverage_cb;
mod decode;
mod tracer;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use qemu_plugin_sys::*;

use decode::{decode, MemOperand};
use format::{FenceKind, FlushKind};
use tracer::{Tracer, PAGE_SHIFT};

/// The plugin API version this plugin is built for (QEMU checks it at load).
#[no_mangle]
pub static qemu_plugin_version: c_int = QEMU_PLUGIN_VERSION as c_int;

/// The marker `cpuid` leaf (guest-agent/src/marker.rs): high half 0x4A58, low half kind.
const MARKER_LEAF_BASE: u64 = 0x4A58_0000;

static BASE: AtomicU64 = AtomicU64::new(0);
static SIZE: AtomicU64 = AtomicU64::new(0);
static TRACER: Mutex<Option<Tracer>> = Mutex::new(None);
static TLB_MISSES: AtomicU64 = AtomicU64::new(0);
static TLB_FLUSHES: AtomicU64 = AtomicU64::new(0);
static REGS: OnceLock<Regs> = OnceLock::new();
static FLUSH_OPS: Mutex<Option<HashMap<(FlushKind, MemOperand), usize>>> = Mutex::new(None);
static STORE_SITES: Mutex<Option<HashMap<(u64, bool), usize>>> = Mutex::new(None);
/// Trace stores, flushes and fences (`out=` given), or coverage only.
static TRACING: AtomicBool = AtomicBool::new(false);

/// Register handles (as integers: the pointers are opaque QEMU handles).
struct Regs {
    gpr: [usize; 16],
    fs_base: usize,
    gs_base: usize,
}

/// A storing instruction: its guest PC and whether it is a non-temporal store. Interned
/// (one per (PC, kind), never freed) so that retranslated blocks reuse the same userdata.
struct StoreSite {
    pc: u64,
    nt: bool,
}

/// Flush descriptors, interned so that retranslated blocks reuse the same userdata.
struct FlushOp {
    kind: FlushKind,
    mem: MemOperand,
}

extern "C" {
    fn g_byte_array_new() -> *mut GByteArray;
    fn g_byte_array_set_size(array: *mut GByteArray, len: c_uint) -> *mut GByteArray;
    fn g_array_free(array: *mut GArray, free_segment: bool) -> *mut c_char;
}

/// A small vaddr-page → paddr-page cache in front of `qemu_plugin_get_hwaddr`.
struct MiniTlb {
    tags: [u64; 4],
    pages: [u64; 4],
    next: usize,
}

impl MiniTlb {
    const EMPTY: u64 = u64::MAX;

    fn lookup(&self, vpage: u64) -> Option<u64> {
        (0..4)
            .find(|&i| self.tags[i] == vpage)
            .map(|i| self.pages[i])
    }

    fn insert(&mut self, vpage: u64, ppage: u64) {
        self.tags[self.next] = vpage;
        self.pages[self.next] = ppage;
        self.next = (self.next + 1) % 4;
    }

    fn clear(&mut self) {
        self.tags = [Self::EMPTY; 4];
    }
}

thread_local! {
    static TLB: RefCell<MiniTlb> = const {
        RefCell::new(MiniTlb { tags: [MiniTlb::EMPTY; 4], pages: [0; 4], next: 0 })
    };
    static REG_BUF: RefCell<usize> = const { RefCell::new(0) };
}

fn with_tracer(f: impl FnOnce(&mut Tracer)) {
    if let Ok(mut g) = TRACER.lock() {
        if let Some(t) = g.as_mut() {
            f(t);
        }
    }
}

pub(crate) fn say(msg: &str) {
    if let Ok(c) = std::ffi::CString::new(format!("powercut-plugin: {msg}\n")) {
        // SAFETY: a valid NUL-terminated string, copied by QEMU.
        unsafe { qemu_plugin_outs(c.as_ptr()) };
    }
}

/// Physical address of the store at `vaddr`, through the mini TLB.
///
/// # Safety
/// `info` must be the meminfo of the current callback.
unsafe fn store_paddr(info: qemu_plugin_meminfo_t, vaddr: u64) -> Option<u64> {
    let vpage = vaddr >> PAGE_SHIFT;
    let off = vaddr & ((1 << PAGE_SHIFT) - 1);
    if let Some(p) = TLB.with(|t| t.borrow().lookup(vpage)) {
        return Some((p << PAGE_SHIFT) | off);
    }
    // SAFETY: `info` is valid for this callback (caller's contract).
    let hw = unsafe { qemu_plugin_get_hwaddr(info, vaddr) };
    // SAFETY: `hw` is non-null and owned by QEMU for this callback.
    if hw.is_null() || unsafe { qemu_plugin_hwaddr_is_io(hw) } {
        return None;
    }
    // SAFETY: as above.
    let pa = unsafe { qemu_plugin_hwaddr_phys_addr(hw) };
    TLB.with(|t| t.borrow_mut().insert(vpage, pa >> PAGE_SHIFT));
    TLB_MISSES.fetch_add(1, Relaxed);
    Some(pa)
}

fn in_pmem(pa: u64) -> bool {
    pa.wrapping_sub(BASE.load(Relaxed)) < SIZE.load(Relaxed)
}

unsafe extern "C" fn on_store(
    _vcpu: c_uint,
    info: qemu_plugin_meminfo_t,
    vaddr: u64,
    ud: *mut c_void,
) {
    // SAFETY: `info` comes from QEMU for this callback.
    let Some(pa) = (unsafe { store_paddr(info, vaddr) }) else {
        return;
    };
    // No store is wider than 16 bytes: most stores leave here, before any other call.
    if !in_pmem(pa) && !in_pmem(pa.wrapping_add(15)) {
        return;
    }
    // SAFETY: as above.
    let size = 1usize << unsafe { qemu_plugin_mem_size_shift(info) };
    if !in_pmem(pa) && !in_pmem(pa.wrapping_add(size as u64 - 1)) {
        return;
    }
    // SAFETY: as above; the union member read matches the reported type.
    let value = unsafe { qemu_plugin_mem_get_value(info) };
    let mut bytes = [0u8; 16];
    // SAFETY: the union field read is the one `type_` names.
    unsafe {
        match value.type_ {
            qemu_plugin_mem_value_type::QEMU_PLUGIN_MEM_VALUE_U8 => bytes[0] = value.data.u8_,
            qemu_plugin_mem_value_type::QEMU_PLUGIN_MEM_VALUE_U16 => {
                bytes[..2].copy_from_slice(&value.data.u16_.to_le_bytes())
            }
            qemu_plugin_mem_value_type::QEMU_PLUGIN_MEM_VALUE_U32 => {
                bytes[..4].copy_from_slice(&value.data.u32_.to_le_bytes())
            }
            qemu_plugin_mem_value_type::QEMU_PLUGIN_MEM_VALUE_U64 => {
                bytes[..8].copy_from_slice(&value.data.u64_.to_le_bytes())
            }
            qemu_plugin_mem_value_type::QEMU_PLUGIN_MEM_VALUE_U128 => {
                bytes[..8].copy_from_slice(&value.data.u128_.low.to_le_bytes());
                bytes[8..].copy_from_slice(&value.data.u128_.high.to_le_bytes());
            }
        }
    }
    let size = size.min(16);
    if ud.is_null() {
        return;
    }
    // SAFETY: `ud` points at a leaked, interned StoreSite (see `intern_store_site`).
    let site = unsafe { &*(ud as *const StoreSite) };
    let (nt, pc) = (site.nt, site.pc);
    let page_left = ((1u64 << PAGE_SHIFT) - (vaddr & ((1 << PAGE_SHIFT) - 1))) as usize;
    with_tracer(|t| {
        t.site(pc);
        if size <= page_left {
            t.store(vaddr, pa, &bytes[..size], nt);
            return;
        }
        // Crosses a page: each part through its own translation, byte by byte.
        t.stats.split_stores += 1;
        for (i, b) in bytes[..size].iter().enumerate() {
            let (va, p) = if i < page_left {
                (vaddr + i as u64, pa + i as u64)
            } else {
                let va = vaddr + i as u64;
                // SAFETY: `info` is this callback's; QEMU resolves any vaddr in its TLB.
                let hw = unsafe { qemu_plugin_get_hwaddr(info, va) };
                // SAFETY: checked non-null before use.
                if hw.is_null() || unsafe { qemu_plugin_hwaddr_is_io(hw) } {
                    continue;
                }
                // SAFETY: as above.
                (va, unsafe { qemu_plugin_hwaddr_phys_addr(hw) })
            };
            if t.in_pmem(p) {
                t.store(va, p, std::slice::from_ref(b), nt);
            }
        }
    });
}

/// Read a 64-bit register through the scratch byte array (read_register appends to it).
///
/// # Safety
/// Only in a callback registered with `QEMU_PLUGIN_CB_R_REGS`.
unsafe fn read_reg(handle: usize) -> Option<u64> {
    if handle == 0 {
        return None;
    }
    let buf = REG_BUF.with(|b| {
        let mut b = b.borrow_mut();
        if *b == 0 {
            // SAFETY: plain glib allocation, kept for the thread's life.
            *b = unsafe { g_byte_array_new() } as usize;
        }
        *b as *mut GByteArray
    });
    // SAFETY: `buf` is our live GByteArray; the handle came from qemu_plugin_get_registers.
    unsafe {
        g_byte_array_set_size(buf, 0);
        let n = qemu_plugin_read_register(handle as *mut qemu_plugin_register, buf);
        if n <= 0 || (*buf).len == 0 {
            return None;
        }
        let len = ((*buf).len as usize).min(8);
        let mut v = [0u8; 8];
        std::ptr::copy_nonoverlapping((*buf).data, v.as_mut_ptr(), len);
        Some(u64::from_le_bytes(v))
    }
}

unsafe extern "C" fn on_flush(_vcpu: c_uint, ud: *mut c_void) {
    // SAFETY: `ud` points at a leaked, interned FlushOp.
    let op = unsafe { &*(ud as *const FlushOp) };
    let Some(regs) = REGS.get() else { return };
    // SAFETY: registered with R_REGS.
    let reg = |r: u8| unsafe { read_reg(regs.gpr[usize::from(r & 15)]) };
    let seg = match op.mem.gs {
        // SAFETY: registered with R_REGS.
        Some(true) => unsafe { read_reg(regs.gs_base) },
        // SAFETY: registered with R_REGS.
        Some(false) => unsafe { read_reg(regs.fs_base) },
        None => None,
    };
    let Some(va) = op.mem.address(reg, seg) else {
        with_tracer(|t| t.stats.flush_unresolved += 1);
        return;
    };
    with_tracer(|t| t.flush(op.kind, va));
}

unsafe extern "C" fn on_fence(_vcpu: c_uint, ud: *mut c_void) {
    let kind = FenceKind::from_code(ud as usize as u8).unwrap_or(FenceKind::Sfence);
    with_tracer(|t| t.fence(kind));
}

pub(crate) unsafe extern "C" fn on_cpuid(_vcpu: c_uint, _ud: *mut c_void) {
    let Some(regs) = REGS.get() else { return };
    // SAFETY: registered with R_REGS.
    let (Some(eax), Some(ecx)) = (unsafe { read_reg(regs.gpr[0]) }, unsafe {
        read_reg(regs.gpr[1])
    }) else {
        return;
    };
    let eax = eax & 0xFFFF_FFFF;
    if eax & 0xFFFF_0000 == MARKER_LEAF_BASE && eax & 0xFFFF <= 1 {
        with_tracer(|t| t.marker(eax & 1 == 1, ecx & 0xFFFF_FFFF));
        coverage_cb::marker(eax & 1 == 1);
    }
}

unsafe extern "C" fn on_tlb_change(_vcpu: c_uint, _ud: *mut c_void) {
    TLB.with(|t| t.borrow_mut().clear());
    TLB_FLUSHES.fetch_add(1, Relaxed);
}

fn intern_store_site(pc: u64, nt: bool) -> *mut c_void {
    let Ok(mut g) = STORE_SITES.lock() else {
        return std::ptr::null_mut();
    };
    let map = g.get_or_insert_with(HashMap::new);
    let p = *map
        .entry((pc, nt))
        .or_insert_with(|| Box::into_raw(Box::new(StoreSite { pc, nt })) as usize);
    p as *mut c_void
}

fn intern_flush(kind: FlushKind, mem: MemOperand) -> *mut c_void {
    let Ok(mut g) = FLUSH_OPS.lock() else {
        return std::ptr::null_mut();
    };
    let map = g.get_or_insert_with(HashMap::new);
    let p = *map
        .entry((kind, mem))
        .or_insert_with(|| Box::into_raw(Box::new(FlushOp { kind, mem })) as usize);
    p as *mut c_void
}

unsafe extern "C" fn on_tb(_id: qemu_plugin_id_t, tb: *mut qemu_plugin_tb) {
    use qemu_plugin_cb_flags::{
        QEMU_PLUGIN_CB_NO_REGS as NO_REGS, QEMU_PLUGIN_CB_R_REGS as R_REGS,
    };
    // SAFETY: `tb` is valid during the translation callback; so are its instructions.
    unsafe {
        coverage_cb::cover_tb(tb);
        let n = qemu_plugin_tb_n_insns(tb);
        for i in 0..n {
            let insn = qemu_plugin_tb_get_insn(tb, i);
            let mut buf = [0u8; 16];
            let len = qemu_plugin_insn_data(insn, buf.as_mut_ptr().cast(), buf.len());
            let vaddr = qemu_plugin_insn_vaddr(insn);
            let d = decode(&buf[..len.min(16)], vaddr);
            if let Some((kind, mem)) = d.flush {
                let ud = intern_flush(kind, mem);
                if !ud.is_null() {
                    qemu_plugin_register_vcpu_insn_exec_cb(insn, Some(on_flush), R_REGS, ud);
                }
            }
            if let Some(kind) = d.fence {
                let ud = kind as usize as *mut c_void;
                qemu_plugin_register_vcpu_insn_exec_cb(insn, Some(on_fence), NO_REGS, ud);
            }
            if d.cpuid {
                qemu_plugin_register_vcpu_insn_exec_cb(
                    insn,
                    Some(on_cpuid),
                    R_REGS,
                    std::ptr::null_mut(),
                );
            }
            if d.tlb_change {
                qemu_plugin_register_vcpu_insn_exec_cb(
                    insn,
                    Some(on_tlb_change),
                    NO_REGS,
                    std::ptr::null_mut(),
                );
            }
            let ud = intern_store_site(vaddr, d.nt_store);
            if ud.is_null() {
                continue;
            }
            qemu_plugin_register_vcpu_mem_cb(
                insn,
                Some(on_store),
                NO_REGS,
                qemu_plugin_mem_rw::QEMU_PLUGIN_MEM_W,
                ud,
            );
        }
    }
}

unsafe extern "C" fn on_vcpu_init(_id: qemu_plugin_id_t, _vcpu: c_uint) {
    const NAMES: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    let mut regs = Regs {
        gpr: [0; 16],
        fs_base: 0,
        gs_base: 0,
    };
    // SAFETY: called in vCPU context as the API requires; the array holds
    // qemu_plugin_reg_descriptor elements and is freed by us (not the strings).
    unsafe {
        let arr = qemu_plugin_get_registers();
        if arr.is_null() {
            say("no registers: flushes and markers cannot be decoded");
            return;
        }
        let descs = (*arr).data as *const qemu_plugin_reg_descriptor;
        for k in 0..(*arr).len as usize {
            let d = &*descs.add(k);
            let name = CStr::from_ptr(d.name).to_string_lossy();
            let h = d.handle as usize;
            if let Some(r) = NAMES.iter().position(|n| *n == name) {
                regs.gpr[r] = h;
            } else if name == "fs_base" {
                regs.fs_base = h;
            } else if name == "gs_base" {
                regs.gs_base = h;
            }
        }
        g_array_free(arr, true);
    }
    if regs.gpr.contains(&0) {
        say("general-purpose registers missing: flushes cannot be decoded");
    }
    let _ = REGS.set(regs);
}

unsafe extern "C" fn on_exit(_id: qemu_plugin_id_t, _ud: *mut c_void) {
    coverage_cb::write_out();
    if let Ok(mut g) = TRACER.lock() {
        if let Some(mut t) = g.take() {
            t.stats.tlb_misses = TLB_MISSES.load(Relaxed);
            t.stats.tlb_flushes = TLB_FLUSHES.load(Relaxed);
            t.finish();
            if let Some(e) = &t.error {
                say(&format!("writing the trace failed: {e}"));
            }
        }
    }
}

fn parse_u64(v: &str) -> Option<u64> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Plugin entry point.
///
/// # Safety
/// Called by QEMU with `argc` valid C strings in `argv`.
#[no_mangle]
pub unsafe extern "C" fn qemu_plugin_install(
    id: qemu_plugin_id_t,
    info: *const qemu_info_t,
    argc: c_int,
    argv: *mut *mut c_char,
) -> c_int {
    let (mut base, mut size, mut out, mut cov) = (None, None, None, None);
    let mut qemu = String::from("unknown");
    for i in 0..argc.max(0) as usize {
        // SAFETY: QEMU passes `argc` valid C strings.
        let arg = unsafe { CStr::from_ptr(*argv.add(i)) }
            .to_string_lossy()
            .into_owned();
        match arg.split_once('=') {
            Some(("base", v)) => base = parse_u64(v),
            Some(("size", v)) => size = parse_u64(v),
            Some(("out", v)) => out = Some(v.to_owned()),
            Some(("cov", v)) => cov = Some(v.to_owned()),
            Some(("qemu", v)) => qemu = v.to_owned(),
            _ => {
                say(&format!(
                    "unknown argument `{arg}` (base=, size=, out=, qemu=, cov=)"
                ));
                return -1;
            }
        }
    }
    // SAFETY: QEMU passes a valid info struct.
    if !info.is_null() && !unsafe { (*info).system_emulation } {
        say("needs full-system emulation");
        return -1;
    }
    let tracing = match (base, size, out) {
        (Some(base), Some(size), Some(out)) => Some((base, size, out)),
        (None, None, None) if cov.is_some() => None,
        _ => {
            say("usage: -plugin libpowercut_plugin.so,base=0x…,size=0x…,out=PATH[,cov=PATH] or ,cov=PATH");
            return -1;
        }
    };
    if let Some(path) = cov {
        if let Err(e) = coverage_cb::install(path) {
            say(&e);
            return -1;
        }
    }
    if let Some((base, size, out)) = tracing {
        let file = match std::fs::File::create(&out) {
            Ok(f) => f,
            Err(e) => {
                say(&format!("cannot create {out}: {e}"));
                return -1;
            }
        };
        BASE.store(base, Relaxed);
        SIZE.store(size, Relaxed);
        TRACING.store(true, Relaxed);
        if let Ok(mut g) = TRACER.lock() {
            *g = Some(Tracer::new(file, base, size, &qemu));
        }
    }
    let on_translate = if TRACING.load(Relaxed) {
        on_tb
    } else {
        coverage_cb::on_tb_coverage_only
    };
    // SAFETY: registering callbacks during install, as the API requires.
    unsafe {
        qemu_plugin_register_vcpu_init_cb(id, Some(on_vcpu_init));
        qemu_plugin_register_vcpu_tb_trans_cb(id, Some(on_translate));
        qemu_plugin_register_atexit_cb(id, Some(on_exit), std::ptr::null_mut());
    }
    0
}
