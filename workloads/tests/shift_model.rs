//! Collapse and insert range against a physical model of a DAX file: blocks with their
//! contents, written in place, and a page → block layout that changes one step at a time
//! (allocate a page, free a page, move one page, set the size), as ext4 and xfs may commit
//! them. A crash may leave any layout since the last fsync over the current blocks (data
//! written through DAX is in place whatever the layout); the oracle must accept every such
//! state, and after an fsync it must demand exactly the current one.

use proptest::prelude::*;
use proptest::sample::Index;
use workloads::oracle::{expectation, CrashPoint, FsRules, Observed, Verdict};
use workloads::{FallocMode, Op, OpOutcome, Pattern, Workload};

const PAGE: u64 = 4096;
/// Pages a file may reach.
const MAX_PAGES: u64 = 12;

/// The physical file: block contents and the layouts a crash may leave.
#[derive(Clone)]
struct Phys {
    seed: u64,
    blocks: Vec<Vec<u8>>,
    pages: Vec<Option<usize>>,
    size: u64,
    /// Layouts (pages, size) since the last fsync, oldest first; the last is the current.
    layouts: Vec<(Vec<Option<usize>>, u64)>,
}

impl Phys {
    fn new(seed: u64) -> Phys {
        let pages = vec![None; (2 * MAX_PAGES) as usize];
        Phys {
            seed,
            blocks: Vec::new(),
            layouts: vec![(pages.clone(), 0)],
            pages,
            size: 0,
        }
    }

    /// One metadata step, which a crash may or may not have kept.
    fn step(&mut self) {
        self.layouts.push((self.pages.clone(), self.size));
    }

    fn pwrite(&mut self, off: u64, len: u64, id: u32) {
        let data = Pattern::new(self.seed, id).bytes(off, len as usize);
        for (i, b) in data.iter().enumerate() {
            let pos = off + i as u64;
            let p = (pos / PAGE) as usize;
            let block = match self.pages[p] {
                Some(b) => b,
                None => {
                    // Freed blocks are never reused before the freeing transaction commits
                    // (ext4 and xfs keep them busy), so a new block is a fresh one.
                    self.blocks.push(vec![0; PAGE as usize]);
                    self.pages[p] = Some(self.blocks.len() - 1);
                    self.step();
                    self.blocks.len() - 1
                }
            };
            self.blocks[block][(pos % PAGE) as usize] = *b;
        }
        if off + len > self.size {
            self.size = off + len;
            self.step();
        }
    }

    fn collapse(&mut self, at: usize, n: usize) {
        for p in at..at + n {
            self.pages[p] = None;
            self.step();
        }
        for p in at + n..self.pages.len() {
            if let Some(b) = self.pages[p].take() {
                self.pages[p - n] = Some(b);
                self.step();
            }
        }
        self.size -= n as u64 * PAGE;
        self.step();
    }

    fn insert(&mut self, at: usize, n: usize) {
        self.size += n as u64 * PAGE;
        self.step();
        for p in (at..self.pages.len() - n).rev() {
            if let Some(b) = self.pages[p].take() {
                self.pages[p + n] = Some(b);
                self.step();
            }
        }
    }

    fn fsync(&mut self) {
        self.layouts = vec![(self.pages.clone(), self.size)];
    }

    /// The file's bytes under layout `i`.
    fn content(&self, i: usize) -> Vec<u8> {
        let (pages, size) = &self.layouts[i];
        (0..*size)
            .map(|pos| {
                pages[(pos / PAGE) as usize].map_or(0, |b| self.blocks[b][(pos % PAGE) as usize])
            })
            .collect()
    }
}

/// A valid workload on `f0` from raw choices (an impossible shift becomes an fsync), and
/// the physical model right after op `crash`.
fn build(seed: u64, raw: &[(u8, u16, u16)], crash: usize) -> (Workload, Phys) {
    let mut ops = vec![Op::create("f0")];
    let mut phys = Phys::new(seed);
    let mut at_crash = phys.clone();
    let f = || "f0".to_string();
    for &(kind, a, b) in raw {
        let (a, b) = (u64::from(a), u64::from(b));
        let size = phys.size;
        let k = ops.len();
        let whole = size.saturating_sub(1) / PAGE;
        let op = match kind % 7 {
            0..=3 => {
                let off = a % (MAX_PAGES * PAGE - 1);
                let len = (1 + b % (2 * PAGE)).min(MAX_PAGES * PAGE - off);
                Op::Pwrite {
                    file: f(),
                    off,
                    len,
                    pattern: None,
                }
            }
            4 if whole >= 2 => {
                let at = a % (whole - 1);
                let n = 1 + b % (whole - at - 1).max(1);
                let n = n.min(whole - at);
                Op::Fallocate {
                    file: f(),
                    mode: FallocMode::CollapseRange,
                    off: at * PAGE,
                    len: n * PAGE,
                }
            }
            5 if size > 0 && size.div_ceil(PAGE) + 3 <= MAX_PAGES => {
                let at = a % size.div_ceil(PAGE);
                let n = 1 + b % 3;
                Op::Fallocate {
                    file: f(),
                    mode: FallocMode::InsertRange,
                    off: at * PAGE,
                    len: n * PAGE,
                }
            }
            _ => Op::Fsync { file: f() },
        };
        match &op {
            Op::Pwrite { off, len, .. } => phys.pwrite(*off, *len, k as u32 + 1),
            Op::Fallocate {
                mode: FallocMode::CollapseRange,
                off,
                len,
                ..
            } => phys.collapse((off / PAGE) as usize, (len / PAGE) as usize),
            Op::Fallocate { off, len, .. } => {
                phys.insert((off / PAGE) as usize, (len / PAGE) as usize)
            }
            _ => phys.fsync(),
        }
        if k == crash {
            at_crash = phys.clone();
        }
        ops.push(op);
    }
    let w = Workload {
        name: "shift".into(),
        seed,
        profile: None,
        ops,
    };
    workloads::spec::validate(&w).expect("the builder makes valid workloads");
    (w, at_crash)
}

fn all_ok(w: &Workload) -> Vec<Option<OpOutcome>> {
    w.ops
        .iter()
        .map(|op| match op {
            Op::Pwrite { len, .. } => Some(OpOutcome::ok(*len as i64)),
            _ => Some(OpOutcome::ok(0)),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_layout_a_crash_may_leave_passes_and_fsync_pins_the_current_one(
        seed in any::<u64>(),
        raw in prop::collection::vec((any::<u8>(), any::<u16>(), any::<u16>()), 1..14),
        crash in any::<Index>(),
        picks in prop::collection::vec(any::<Index>(), 6),
    ) {
        let k = 1 + crash.index(raw.len());
        let (w, phys) = build(seed, &raw, k);
        for rules in [FsRules::ext4(), FsRules::xfs()] {
            let e = expectation(&w, &all_ok(&w), CrashPoint::AfterOp(k), &rules);
            let mut layouts: Vec<usize> = picks.iter().map(|p| p.index(phys.layouts.len())).collect();
            layouts.extend([0, phys.layouts.len() - 1]);
            for i in layouts {
                let data = phys.content(i);
                let r = e.check(&[("f0".to_string(), Observed::present(data))].into());
                let titles: Vec<String> = r.findings.iter().map(|f| f.title()).collect();
                prop_assert_eq!(r.verdict, Verdict::Pass, "layout {} of {}: {:?}", i, phys.layouts.len(), titles);
            }
            if matches!(w.ops[k], Op::Fsync { .. }) {
                let cur = phys.content(phys.layouts.len() - 1);
                prop_assert_eq!(e.files["f0"].states[0].exact_content(), Some(cur));
            }
        }
    }
}
