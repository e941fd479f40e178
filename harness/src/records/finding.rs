//! What a check found, typed: where the power was cut ([`CrashLabel`]), and for a failing
//! check the [`Failure`] — its verdict, its title (one line for people) and its
//! [`Signature`] (what must stay the same for a re-run or a smaller workload to count as the
//! same failure). Built once from the checker's outcome and the oracle's expectation, and
//! kept typed in the journal and the failure directory: nothing parses a title back.

use std::fmt;

use serde::{Deserialize, Serialize};
use workloads::oracle::{CrashPoint, Expectation, Verdict};
use workloads::Workload;

use super::bucket::{Bucket, BucketContext};
use crate::records::CheckOutcome;

/// Where the power was cut: the point and the kind of the op there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashLabel {
    /// After or inside which op.
    pub point: CrashPoint,
    /// Kind of that op (`fsync`, `pwrite`, …).
    pub kind: String,
}

impl CrashLabel {
    /// The crash label of an expectation.
    pub fn of(exp: &Expectation) -> CrashLabel {
        CrashLabel {
            point: exp.crash,
            kind: exp.crash_op.clone(),
        }
    }

    /// The crash label of `point` in `workload` (kind `none` past its last op).
    pub fn in_workload(point: CrashPoint, workload: &Workload) -> CrashLabel {
        CrashLabel {
            point,
            kind: workload
                .ops
                .get(point_op(point))
                .map_or("none", |op| op.kind())
                .to_owned(),
        }
    }

    /// The op index.
    pub fn op(&self) -> usize {
        point_op(self.point)
    }

    /// Is the cut inside the op (else after it)?
    pub fn inside(&self) -> bool {
        matches!(self.point, CrashPoint::InsideOp(_))
    }
}

/// The op index of a crash point.
pub fn point_op(p: CrashPoint) -> usize {
    point_parts(p).0
}

/// The op index of a crash point and whether it is inside the op.
pub fn point_parts(p: CrashPoint) -> (usize, bool) {
    match p {
        CrashPoint::AfterOp(k) => (k, false),
        CrashPoint::InsideOp(k) => (k, true),
    }
}

impl fmt::Display for CrashLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = if self.inside() { "inside" } else { "after" };
        write!(f, "{w} op {} ({})", self.op(), self.kind)
    }
}

/// What identifies a failure across re-runs and smaller workloads: the verdict, the file,
/// and the crash point without its op index (ops are renumbered when earlier ones are
/// removed). Byte ranges and sizes are left out: they change when a minimizer shrinks the
/// lengths of data ops, and the failure is still the same loss.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Verdict kind.
    pub verdict: Verdict,
    /// File name, when the failure is about one file.
    pub file: Option<String>,
    /// Inside the op (else after it).
    pub inside: bool,
    /// Kind of the op at the crash point.
    pub kind: String,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = if self.inside { "inside" } else { "after" };
        match &self.file {
            Some(file) => write!(f, "{}: {file} … {w} op # ({})", self.verdict, self.kind),
            None => write!(f, "{}: {w} op # ({})", self.verdict, self.kind),
        }
    }
}

/// A failing check: a kernel-bug verdict with its title and signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Verdict.
    pub verdict: Verdict,
    /// One line, e.g. `data-loss: f2 [4096..8192) after op 7 (fsync)`.
    pub title: String,
    /// What identifies it across re-runs.
    pub signature: Signature,
    /// The bug it shows (absent in journals written before buckets: the title stands in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<Box<Bucket>>,
}

impl Failure {
    /// The key of its bucket ([`Bucket::id`]), or its title when it has no bucket (a
    /// journal written before buckets).
    pub fn bucket_id(&self) -> String {
        self.bucket
            .as_ref()
            .map_or_else(|| self.title.clone(), |b| b.id())
    }
}

/// Every failure a check shows: one per oracle finding, or one for the whole image when
/// the verdict has no findings (`fs-corrupt`, `mount-failed`). Empty when it passed.
pub fn failures_of(
    outcome: &CheckOutcome,
    exp: &Expectation,
    ctx: &BucketContext<'_>,
) -> Vec<Failure> {
    let label = CrashLabel::of(exp);
    let mut out: Vec<Failure> = outcome
        .findings
        .iter()
        .map(|f| Failure {
            verdict: f.verdict,
            title: f.title(),
            signature: Signature {
                verdict: f.verdict,
                file: Some(f.file.clone()),
                inside: label.inside(),
                kind: label.kind.clone(),
            },
            bucket: Some(Box::new(Bucket::of_finding(f, exp.crash, ctx))),
        })
        .collect();
    if out.is_empty() && outcome.verdict != Verdict::Pass {
        out.push(Failure {
            verdict: outcome.verdict,
            title: format!("{}: {label}", outcome.verdict),
            signature: Signature {
                verdict: outcome.verdict,
                file: None,
                inside: label.inside(),
                kind: label.kind.clone(),
            },
            bucket: Some(Box::new(Bucket::of_image(outcome.verdict, ctx))),
        });
    }
    out
}

/// The failure that decided the check's verdict (its first finding of that verdict), or
/// `None` when the check passed.
pub fn deciding_failure(
    outcome: &CheckOutcome,
    exp: &Expectation,
    ctx: &BucketContext<'_>,
) -> Option<Failure> {
    if outcome.verdict == Verdict::Pass {
        return None;
    }
    // Never empty for a non-pass verdict (`failures_of` titles a finding-less verdict).
    let mut all = failures_of(outcome, exp, ctx);
    let pick = all
        .iter()
        .position(|f| f.verdict == outcome.verdict)
        .unwrap_or(0);
    (pick < all.len()).then(|| all.swap_remove(pick))
}

#[cfg(test)]
mod tests {
    use super::*;
    use workloads::oracle::Finding;

    fn exp(point: CrashPoint, kind: &str) -> Expectation {
        Expectation {
            seed: 1,
            crash: point,
            crash_op: kind.into(),
            rules: "ext4".into(),
            files: Default::default(),
        }
    }

    fn finding(verdict: Verdict, file: &str, start: u64, at: &str) -> Finding {
        Finding {
            verdict,
            file: file.into(),
            start,
            end: start + 8,
            expected: Vec::new(),
            found: Vec::new(),
            allowed_sizes: None,
            found_size: None,
            promised_by: None,
            at: at.into(),
            meta: None,
        }
    }

    fn ctx(w: &Workload) -> BucketContext<'_> {
        BucketContext {
            workload: w,
            model: "snapshot",
            filesystem: "ext4",
            mutant: None,
            modules: &[],
        }
    }

    fn empty() -> Workload {
        Workload {
            name: "t".into(),
            seed: 1,
            profile: None,
            ops: Vec::new(),
        }
    }

    fn outcome(verdict: Verdict, findings: Vec<Finding>) -> CheckOutcome {
        CheckOutcome {
            verdict,
            findings,
            detail: String::new(),
            millis: 1,
            bytes_written: 0,
            phases: Default::default(),
            same_as: None,
        }
    }

    #[test]
    fn labels_print_as_people_read_them() {
        let after = CrashLabel::of(&exp(CrashPoint::AfterOp(7), "fsync"));
        let inside = CrashLabel::of(&exp(CrashPoint::InsideOp(3), "pwrite"));

        assert_eq!(after.to_string(), "after op 7 (fsync)");
        assert_eq!(inside.to_string(), "inside op 3 (pwrite)");
        assert_eq!((inside.op(), inside.inside()), (3, true));
    }

    #[test]
    fn the_deciding_failure_is_the_first_finding_of_the_verdict() {
        let e = exp(CrashPoint::AfterOp(4), "fsync");
        let o = outcome(
            Verdict::MissingFile,
            vec![
                finding(Verdict::DataLoss, "f1", 64, "after op 4 (fsync)"),
                finding(Verdict::MissingFile, "f0", 0, "after op 4 (fsync)"),
            ],
        );

        let f = deciding_failure(&o, &e, &ctx(&empty())).expect("fails");

        assert_eq!(f.verdict, Verdict::MissingFile);
        assert_eq!(f.title, "missing-file: f0 after op 4 (fsync)");
        assert_eq!(f.signature.file.as_deref(), Some("f0"));
        assert_eq!(failures_of(&o, &e, &ctx(&empty())).len(), 2);
    }

    #[test]
    fn verdicts_without_findings_are_titled_by_the_crash_point() {
        let e = exp(CrashPoint::InsideOp(2), "pwrite");
        let o = outcome(Verdict::FsCorrupt, Vec::new());

        let f = deciding_failure(&o, &e, &ctx(&empty())).expect("fails");

        assert_eq!(f.title, "fs-corrupt: inside op 2 (pwrite)");
        assert_eq!(f.signature.to_string(), "fs-corrupt: inside op # (pwrite)");
        assert_eq!(
            deciding_failure(&outcome(Verdict::Pass, vec![]), &e, &ctx(&empty())),
            None
        );
    }

    #[test]
    fn signatures_ignore_op_indexes_and_byte_ranges() {
        let a = failures_of(
            &outcome(
                Verdict::DataLoss,
                vec![finding(Verdict::DataLoss, "f2", 4096, "after op 7 (fsync)")],
            ),
            &exp(CrashPoint::AfterOp(7), "fsync"),
            &ctx(&empty()),
        );
        let b = failures_of(
            &outcome(
                Verdict::DataLoss,
                vec![finding(Verdict::DataLoss, "f2", 0, "after op 2 (fsync)")],
            ),
            &exp(CrashPoint::AfterOp(2), "fsync"),
            &ctx(&empty()),
        );

        assert_ne!(a[0].title, b[0].title);
        assert_eq!(a[0].signature, b[0].signature);
        assert_eq!(
            a[0].signature.to_string(),
            "data-loss: f2 … after op # (fsync)"
        );
    }
}
