//! Shrinking a failing workload (pure: the expensive "does it still fail?" test is a
//! closure, so all of this is tested without VMs).
//!
//! 1. Pin every data op's pattern id (`pattern: k + 1`), so removing earlier ops does not
//!    change the bytes later ops write; drop the ops after the crash point (they run after
//!    the image is taken).
//! 2. Delta debugging (ddmin, Zeller & Hildebrandt 2002) over the ops, never removing the
//!    op the crash point is attached to; the crash point follows that op as indexes shift.
//!    Candidates that fail `workloads::spec::validate` are skipped without a run.
//! 3. Shrink data ops: offsets to 0 or aligned down to a page, lengths to one word or halved.
//!
//! Every result is cached by a hash of (workload, crash point) and the number of real runs
//! is bounded; when the budget is spent the smallest failing case so far is returned.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use workloads::oracle::CrashPoint;
use workloads::spec::{validate, PAGE_SIZE};
use workloads::{Op, Workload};

use crate::records::finding::{point_parts, CrashLabel};

/// A workload with the crash point attached to one of its ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The workload.
    pub workload: Workload,
    /// The crash point.
    pub point: CrashPoint,
}

impl Case {
    /// Op index of the crash point.
    pub fn crash_op(&self) -> usize {
        point_parts(self.point).0
    }

    /// `after op 1 (fsync)`.
    pub fn label(&self) -> String {
        CrashLabel::in_workload(self.point, &self.workload).to_string()
    }

    /// The case keeping only ops `keep` (sorted, must contain the crash op).
    fn subset(&self, keep: &[usize]) -> Case {
        let (k, inside) = point_parts(self.point);
        let new_k = keep.iter().position(|&i| i == k).unwrap_or(0);
        let mut workload = self.workload.clone();
        workload.ops = keep
            .iter()
            .filter_map(|&i| self.workload.ops.get(i).cloned())
            .collect();
        let point = if inside {
            CrashPoint::InsideOp(new_k)
        } else {
            CrashPoint::AfterOp(new_k)
        };
        Case { workload, point }
    }

    /// The case with op `i` replaced by `op`.
    fn with_op(&self, i: usize, op: Op) -> Case {
        let mut c = self.clone();
        if let Some(slot) = c.workload.ops.get_mut(i) {
            *slot = op;
        }
        c
    }
}

/// Cache key of a case: SHA-256 of its YAML and crash point.
pub fn case_key(case: &Case) -> String {
    let yaml = serde_yaml::to_string(&case.workload).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(yaml.as_bytes());
    h.update(format!("{:?}", case.point).as_bytes());
    hex::encode(h.finalize())
}

/// Give every data op its default pattern id explicitly (`k + 1`), so its bytes stay the
/// same when ops before it are removed.
pub fn pin_patterns(workload: &Workload) -> Workload {
    let mut w = workload.clone();
    for (k, op) in w.ops.iter_mut().enumerate() {
        let id = op.pattern_id(k);
        if let Op::Pwrite { pattern, .. }
        | Op::MmapStore { pattern, .. }
        | Op::Pwritev2 { pattern, .. }
        | Op::UringWrite { pattern, .. }
        | Op::Setxattr { pattern, .. } = op
        {
            *pattern = id;
        }
    }
    w
}

/// The result of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The failure came back.
    Reproduces,
    /// It did not.
    Passes,
    /// The candidate is not a valid workload (not run).
    Invalid,
    /// The run budget is spent (not run).
    Exhausted,
}

/// Delta debugging: the smallest subset of `items` (order kept) for which `test` says
/// [`Probe::Reproduces`], found by removing chunks and complements of chunks of shrinking
/// size. `items` itself is assumed to reproduce. Stops early on [`Probe::Exhausted`].
pub fn ddmin<T: Clone + PartialEq, E>(
    items: &[T],
    test: &mut dyn FnMut(&[T]) -> Result<Probe, E>,
) -> Result<Vec<T>, E> {
    let mut c: Vec<T> = items.to_vec();
    if c.is_empty() {
        return Ok(c);
    }
    match test(&[])? {
        Probe::Reproduces => return Ok(Vec::new()),
        Probe::Exhausted => return Ok(c),
        Probe::Passes | Probe::Invalid => {}
    }
    let mut n = 2usize;
    while c.len() >= 2 {
        let chunks: Vec<Vec<T>> = split(&c, n);
        let mut reduced = false;
        for ch in &chunks {
            match test(ch)? {
                Probe::Reproduces => {
                    c = ch.clone();
                    n = 2;
                    reduced = true;
                    break;
                }
                Probe::Exhausted => return Ok(c),
                Probe::Passes | Probe::Invalid => {}
            }
        }
        // With two chunks each complement is the other chunk, already tested.
        if !reduced && chunks.len() > 2 {
            for ch in &chunks {
                let comp: Vec<T> = c.iter().filter(|x| !ch.contains(x)).cloned().collect();
                match test(&comp)? {
                    Probe::Reproduces => {
                        c = comp;
                        n = (n - 1).max(2);
                        reduced = true;
                        break;
                    }
                    Probe::Exhausted => return Ok(c),
                    Probe::Passes | Probe::Invalid => {}
                }
            }
        }
        if !reduced {
            if n >= c.len() {
                break;
            }
            n = (2 * n).min(c.len());
        }
    }
    Ok(c)
}

/// `items` in `n` contiguous chunks of near-equal size (none empty).
fn split<T: Clone>(items: &[T], n: usize) -> Vec<Vec<T>> {
    let n = n.clamp(1, items.len().max(1));
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let end = start + (items.len() - start) / (n - i);
        out.push(items[start..end].to_vec());
        start = end;
    }
    out.retain(|c| !c.is_empty());
    out
}

/// Smaller variants of one op, most aggressive first: offset 0, offset aligned down to a
/// page, length of one word (8 bytes), half the length; half the size of a truncate or a
/// mapping. Empty for ops with nothing to shrink.
pub fn shrink_candidates(op: &Op) -> Vec<Op> {
    let mut out = Vec::new();
    let mut off_len = |off: u64, len: u64, make: &dyn Fn(u64, u64) -> Op| {
        if off != 0 {
            out.push(make(0, len));
            let aligned = off - off % PAGE_SIZE;
            if aligned != 0 && aligned != off {
                out.push(make(aligned, len));
            }
        }
        if len > 8 {
            out.push(make(off, 8));
            if len / 2 > 8 {
                out.push(make(off, len / 2));
            }
        }
    };
    match op {
        Op::Pwrite {
            file,
            off,
            len,
            pattern,
        } => off_len(*off, *len, &|off, len| Op::Pwrite {
            file: file.clone(),
            off,
            len,
            pattern: *pattern,
        }),
        Op::MmapStore {
            file,
            off,
            len,
            pattern,
        } => off_len(*off, *len, &|off, len| Op::MmapStore {
            file: file.clone(),
            off,
            len,
            pattern: *pattern,
        }),
        Op::Flush { file, off, len } => off_len(*off, *len, &|off, len| Op::Flush {
            file: file.clone(),
            off,
            len,
        }),
        Op::Msync { file, off, len } => off_len(*off, *len, &|off, len| Op::Msync {
            file: file.clone(),
            off,
            len,
        }),
        Op::Fallocate {
            file,
            mode,
            off,
            len,
        } => off_len(*off, *len, &|off, len| Op::Fallocate {
            file: file.clone(),
            mode: *mode,
            off,
            len,
        }),
        Op::Ftruncate { file, size } if *size > 0 => out.push(Op::Ftruncate {
            file: file.clone(),
            size: size / 2,
        }),
        Op::Mmap { file, len, sync } => {
            let half = (len / 2).div_ceil(PAGE_SIZE) * PAGE_SIZE;
            if half > 0 && half < *len {
                out.push(Op::Mmap {
                    file: file.clone(),
                    len: half,
                    sync: *sync,
                });
            }
        }
        _ => {}
    }
    out
}

/// Counters of a minimization.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Real runs (VM run + check).
    pub runs: usize,
    /// Candidates answered from the cache.
    pub cache_hits: usize,
    /// Candidates skipped because they fail validation.
    pub invalid: usize,
    /// The run budget ran out.
    pub exhausted: bool,
}

/// The outcome of [`minimize`].
#[derive(Debug, Clone)]
pub struct Minimized {
    /// The smallest case that still fails (the input if nothing reproduced).
    pub case: Case,
    /// Did the failure reproduce at all?
    pub reproduced: bool,
    /// Ops of the input workload.
    pub ops_before: usize,
    /// Ops after dropping those past the crash point.
    pub ops_truncated: usize,
    /// Ops of the result.
    pub ops_after: usize,
    /// Counters.
    pub stats: Stats,
}

/// The expensive test: `Some(true)` the failure reproduced, `Some(false)` it did not,
/// `None` no answer (an infrastructure error: taken as not reproducing, not cached).
pub type Test<'a, E> = dyn FnMut(&Case) -> Result<Option<bool>, E> + 'a;

/// Validation, cache and budget in front of the expensive test.
struct Prober<'a, E> {
    test: &'a mut Test<'a, E>,
    progress: &'a mut dyn FnMut(&str),
    cache: HashMap<String, bool>,
    max_runs: usize,
    stats: Stats,
}

impl<E> Prober<'_, E> {
    fn probe(&mut self, case: &Case, what: &str) -> Result<Probe, E> {
        if validate(&case.workload).is_err() {
            self.stats.invalid += 1;
            return Ok(Probe::Invalid);
        }
        let key = case_key(case);
        if let Some(&r) = self.cache.get(&key) {
            self.stats.cache_hits += 1;
            return Ok(if r { Probe::Reproduces } else { Probe::Passes });
        }
        if self.stats.runs >= self.max_runs {
            self.stats.exhausted = true;
            return Ok(Probe::Exhausted);
        }
        self.stats.runs += 1;
        (self.progress)(&format!(
            "[run {}/{}] {what}: {} ops, crash {}",
            self.stats.runs,
            self.max_runs,
            case.workload.ops.len(),
            case.label()
        ));
        let answer = (self.test)(case)?;
        (self.progress)(match answer {
            Some(true) => "    → reproduces",
            Some(false) => "    → does not reproduce",
            None => "    → no answer (taken as not reproducing)",
        });
        if let Some(r) = answer {
            self.cache.insert(key, r);
        }
        Ok(if answer == Some(true) {
            Probe::Reproduces
        } else {
            Probe::Passes
        })
    }
}

/// Shrink `input` while `test` says the failure still reproduces, with at most `max_runs`
/// calls of `test`. `progress` gets one line per run.
pub fn minimize<'a, E>(
    input: &Case,
    max_runs: usize,
    test: &'a mut Test<'a, E>,
    progress: &mut dyn FnMut(&str),
) -> Result<Minimized, E> {
    let pinned = Case {
        workload: pin_patterns(&input.workload),
        point: input.point,
    };
    let k = pinned.crash_op();
    let truncated = pinned.subset(&(0..=k).collect::<Vec<_>>());
    let mut p = Prober {
        test,
        progress,
        cache: HashMap::new(),
        max_runs,
        stats: Stats::default(),
    };
    let mut cur = truncated.clone();
    let mut ok =
        p.probe(&cur, "baseline (ops after the crash point dropped)")? == Probe::Reproduces;
    if !ok && truncated != pinned {
        cur = pinned.clone();
        ok = p.probe(&cur, "baseline (whole workload)")? == Probe::Reproduces;
    }
    let done = |case: Case, reproduced: bool, stats: Stats| Minimized {
        ops_after: case.workload.ops.len(),
        case,
        reproduced,
        ops_before: input.workload.ops.len(),
        ops_truncated: truncated.workload.ops.len(),
        stats,
    };
    if !ok {
        return Ok(done(input.clone(), false, p.stats));
    }

    // Delta debugging over every op but the crash op.
    let crash = cur.crash_op();
    let removable: Vec<usize> = (0..cur.workload.ops.len())
        .filter(|&i| i != crash)
        .collect();
    let base = cur.clone();
    let kept = ddmin(&removable, &mut |subset: &[usize]| {
        let mut keep: Vec<usize> = subset.to_vec();
        keep.push(crash);
        keep.sort_unstable();
        let case = base.subset(&keep);
        p.probe(
            &case,
            &format!("keep {} of {} ops", keep.len(), base.workload.ops.len()),
        )
    })?;
    let mut keep = kept;
    keep.push(crash);
    keep.sort_unstable();
    cur = base.subset(&keep);

    // Shrink offsets and lengths, op by op, until nothing more is accepted.
    let mut changed = true;
    while changed && !p.stats.exhausted {
        changed = false;
        for i in 0..cur.workload.ops.len() {
            loop {
                let mut accepted = false;
                for op in shrink_candidates(&cur.workload.ops[i]) {
                    let what = format!("op {i} ({}): {}", op.kind(), describe(&op));
                    let cand = cur.with_op(i, op);
                    match p.probe(&cand, &what)? {
                        Probe::Reproduces => {
                            cur = cand;
                            accepted = true;
                            changed = true;
                            break;
                        }
                        Probe::Exhausted => return Ok(done(cur, true, p.stats)),
                        Probe::Passes | Probe::Invalid => {}
                    }
                }
                if !accepted {
                    break;
                }
            }
        }
    }
    Ok(done(cur, true, p.stats))
}

/// `off 0 len 8` for progress lines.
fn describe(op: &Op) -> String {
    match op {
        Op::Pwrite { off, len, .. }
        | Op::MmapStore { off, len, .. }
        | Op::Flush { off, len, .. }
        | Op::Msync { off, len, .. }
        | Op::Fallocate { off, len, .. } => format!("off {off} len {len}"),
        Op::Ftruncate { size, .. } => format!("size {size}"),
        Op::Mmap { len, .. } => format!("len {len}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
