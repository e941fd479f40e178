//! Reading a campaign failure directory (`title.txt`, `workload.yaml`, `crash-point.txt`,
//! `mutant.txt`, the campaign's `config.yaml` two levels up) and the failure *signature*:
//! what must stay the same for a re-run or a smaller workload to count as the same failure.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use workloads::oracle::{CrashPoint, Finding, Verdict};
use workloads::Workload;

use super::TriageError;
use crate::campaign::config::CampaignConfig;
use crate::checker::CheckOutcome;

/// Name of the file that records the mutant a failure was found with.
pub const MUTANT_FILE: &str = "mutant.txt";

/// Everything `repro` and `minimize` need from a failure directory.
#[derive(Debug, Clone)]
pub struct FailureDir {
    /// The directory.
    pub dir: PathBuf,
    /// The failure title (`missing-file: f0 after op 3 (fsync)`).
    pub title: String,
    /// The workload, exactly as it ran.
    pub workload: Workload,
    /// Where the power was cut.
    pub point: CrashPoint,
    /// The seed line of `crash-point.txt`.
    pub seed: u64,
    /// The rules line of `crash-point.txt` (`ext4`).
    pub rules: String,
    /// The mutant, from `mutant.txt` (or the campaign config); `None` for the stock kernel
    /// or when unknown.
    pub mutant: Option<String>,
    /// The campaign's `config.yaml`, when the failure directory is still inside its run
    /// directory (`<run>/failures/<slug>/`).
    pub campaign_config: Option<CampaignConfig>,
}

fn read(path: &Path) -> Result<String, TriageError> {
    std::fs::read_to_string(path).map_err(|e| TriageError::io(path, e))
}

fn bad(path: &Path, message: String) -> TriageError {
    TriageError::BadFailureDir {
        path: path.to_owned(),
        message,
    }
}

impl FailureDir {
    /// Load the failure directory `dir`.
    pub fn load(dir: &Path) -> Result<FailureDir, TriageError> {
        let title_path = dir.join("title.txt");
        let title = read(&title_path)?.trim().to_owned();
        Signature::parse(&title).map_err(|m| bad(&title_path, m))?;
        let workload = workloads::spec::load_workload(&dir.join("workload.yaml"))?;
        let cp_path = dir.join("crash-point.txt");
        let cp = read(&cp_path)?;
        let mut lines = cp.lines();
        let label = lines.next().unwrap_or_default();
        let (point, kind) = parse_crash_label(label).map_err(|m| bad(&cp_path, m))?;
        let (k, _) = point_parts(point);
        match workload.ops.get(k) {
            Some(op) if op.kind() == kind => {}
            Some(op) => {
                return Err(bad(
                    &cp_path,
                    format!("crash point names a {kind} but op {k} of workload.yaml is a {}: the directory mixes two failures", op.kind()),
                ))
            }
            None => {
                return Err(bad(
                    &cp_path,
                    format!(
                        "crash point op {k} is past the workload's {} ops",
                        workload.ops.len()
                    ),
                ))
            }
        }
        let mut seed = workload.seed;
        let mut rules = "ext4".to_owned();
        let mut mutant_line = None;
        for line in lines {
            if let Some(s) = line.strip_prefix("seed ") {
                seed = s
                    .trim()
                    .parse()
                    .map_err(|_| bad(&cp_path, format!("bad seed line `{line}`")))?;
            } else if let Some(r) = line.strip_prefix("rules ") {
                r.trim().clone_into(&mut rules);
            } else if let Some(m) = line.strip_prefix("mutant ") {
                mutant_line = Some(m.trim().to_owned());
            }
        }
        let campaign_config = campaign_config_of(dir)?;
        let mutant_path = dir.join(MUTANT_FILE);
        let recorded = if mutant_path.exists() {
            Some(read(&mutant_path)?.trim().to_owned())
        } else {
            mutant_line
        };
        let mutant = match recorded {
            Some(m) => parse_mutant(&m),
            None => campaign_config.as_ref().and_then(|c| c.mutant.clone()),
        };
        Ok(FailureDir {
            dir: dir.to_owned(),
            title,
            workload,
            point,
            seed,
            rules,
            mutant,
            campaign_config,
        })
    }

    /// The signature of this failure.
    pub fn signature(&self) -> Signature {
        // Checked by `load`.
        Signature::parse(&self.title).unwrap_or_else(|_| Signature {
            verdict: Verdict::Pass,
            file: None,
            at: NormalisedPoint::of(self.point, "?"),
        })
    }

    /// The crash label (`after op 3 (fsync)`).
    pub fn crash_label(&self) -> String {
        let (k, _) = point_parts(self.point);
        let kind = self.workload.ops.get(k).map_or("none", |op| op.kind());
        label_of(self.point, kind)
    }
}

/// `none`/empty → stock kernel, else the mutant name.
pub fn parse_mutant(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s != "none").then(|| s.to_owned())
}

/// The campaign config of a failure directory at `<run>/failures/<slug>/`, if present.
fn campaign_config_of(dir: &Path) -> Result<Option<CampaignConfig>, TriageError> {
    let Some(run) = dir.parent().and_then(Path::parent) else {
        return Ok(None);
    };
    let path = run.join("config.yaml");
    if !path.exists() {
        return Ok(None);
    }
    CampaignConfig::load(&path)
        .map(Some)
        .map_err(|e| bad(&path, e.to_string()))
}

/// The op index of a crash point and whether it is inside the op.
pub fn point_parts(p: CrashPoint) -> (usize, bool) {
    match p {
        CrashPoint::AfterOp(k) => (k, false),
        CrashPoint::InsideOp(k) => (k, true),
    }
}

/// "after op 7 (fsync)" / "inside op 3 (pwrite)".
pub fn label_of(p: CrashPoint, kind: &str) -> String {
    match p {
        CrashPoint::AfterOp(k) => format!("after op {k} ({kind})"),
        CrashPoint::InsideOp(k) => format!("inside op {k} ({kind})"),
    }
}

/// Parse a crash label: `after op 7 (fsync)` → (`AfterOp(7)`, `fsync`).
pub fn parse_crash_label(label: &str) -> Result<(CrashPoint, String), String> {
    let label = label.trim();
    let err = || {
        format!(
            "`{label}` is not a crash point (\"after op 7 (fsync)\" or \"inside op 3 (pwrite)\")"
        )
    };
    let (inside, rest) = if let Some(r) = label.strip_prefix("after op ") {
        (false, r)
    } else if let Some(r) = label.strip_prefix("inside op ") {
        (true, r)
    } else {
        return Err(err());
    };
    let (num, kind) = rest.split_once(' ').ok_or_else(err)?;
    let k: usize = num.parse().map_err(|_| err())?;
    let kind = kind
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(err)?;
    let point = if inside {
        CrashPoint::InsideOp(k)
    } else {
        CrashPoint::AfterOp(k)
    };
    Ok((point, kind.to_owned()))
}

/// A crash point without its op index: where (after / inside) and which op kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalisedPoint {
    /// Inside the op (else after it).
    pub inside: bool,
    /// Kind of the op (`fsync`).
    pub kind: String,
}

impl NormalisedPoint {
    /// Of `point` at an op of kind `kind`.
    pub fn of(point: CrashPoint, kind: &str) -> NormalisedPoint {
        NormalisedPoint {
            inside: point_parts(point).1,
            kind: kind.to_owned(),
        }
    }
}

impl fmt::Display for NormalisedPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = if self.inside { "inside" } else { "after" };
        write!(f, "{w} op # ({})", self.kind)
    }
}

/// What identifies a failure across re-runs and smaller workloads: the verdict kind, the
/// file, and the crash point with its op index normalised (ops are renumbered when earlier
/// ones are removed). Byte ranges and sizes are left out: they change when a minimizer
/// shrinks the lengths of data ops, and the failure is still the same loss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Verdict kind.
    pub verdict: Verdict,
    /// File name, when the failure is about one file.
    pub file: Option<String>,
    /// Crash point.
    pub at: NormalisedPoint,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}: {file} … {}", self.verdict, self.at),
            None => write!(f, "{}: {}", self.verdict, self.at),
        }
    }
}

impl Signature {
    /// Parse a failure title: `data-loss: f2 [4096..8192) after op 7 (fsync)`,
    /// `missing-file: f0 after op 3 (fsync)`, `fs-corrupt: inside op 3 (pwrite)`.
    pub fn parse(title: &str) -> Result<Signature, String> {
        let (verdict, rest) = title
            .split_once(": ")
            .ok_or_else(|| format!("`{title}` is not a failure title (`<verdict>: …`)"))?;
        let verdict = Verdict::from_str(verdict).map_err(|e| e.to_string())?;
        let at = [" after op ", " inside op "]
            .iter()
            .filter_map(|m| rest.rfind(m).map(|i| i + 1))
            .max()
            .or_else(|| {
                (rest.starts_with("after op ") || rest.starts_with("inside op ")).then_some(0)
            })
            .ok_or_else(|| format!("`{title}` names no crash point"))?;
        let (point, kind) = parse_crash_label(&rest[at..])?;
        let before = rest[..at].trim();
        let file = before
            .split_whitespace()
            .next()
            .map(str::to_owned)
            .filter(|_| at > 0);
        Ok(Signature {
            verdict,
            file,
            at: NormalisedPoint::of(point, &kind),
        })
    }

    /// The signature of one finding.
    pub fn of_finding(f: &Finding) -> Option<Signature> {
        let (point, kind) = parse_crash_label(&f.at).ok()?;
        Some(Signature {
            verdict: f.verdict,
            file: Some(f.file.clone()),
            at: NormalisedPoint::of(point, &kind),
        })
    }
}

/// Every failure title a check produced: one per finding, or `<verdict>: <label>` for a
/// kernel-bug verdict without findings (fs-corrupt, mount-failed), as the campaign names it.
pub fn titles_of(outcome: &CheckOutcome, label: &str) -> Vec<String> {
    let mut titles: Vec<String> = outcome.findings.iter().map(Finding::title).collect();
    if titles.is_empty() && outcome.verdict != Verdict::Pass {
        titles.push(format!("{}: {label}", outcome.verdict));
    }
    titles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_labels_parse_both_ways() {
        assert_eq!(
            parse_crash_label("after op 7 (fsync)"),
            Ok((CrashPoint::AfterOp(7), "fsync".into()))
        );
        assert_eq!(
            parse_crash_label("inside op 3 (fsync_dir)\n"),
            Ok((CrashPoint::InsideOp(3), "fsync_dir".into()))
        );
        assert!(parse_crash_label("after op x (fsync)").is_err());
        assert!(parse_crash_label("before op 3 (fsync)").is_err());
        assert_eq!(
            label_of(CrashPoint::InsideOp(3), "pwrite"),
            "inside op 3 (pwrite)"
        );
    }

    #[test]
    fn signatures_ignore_op_indexes_and_byte_ranges() {
        let a = Signature::parse("data-loss: f2 [4096..8192) after op 7 (fsync)").expect("a");
        let b = Signature::parse("data-loss: f2 [0..512) after op 2 (fsync)").expect("b");
        let c = Signature::parse("data-loss: f1 [0..512) after op 2 (fsync)").expect("c");
        let d = Signature::parse("data-loss: f2 [0..512) inside op 2 (fsync)").expect("d");

        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(a.file.as_deref(), Some("f2"));
        assert_eq!(a.to_string(), "data-loss: f2 … after op # (fsync)");
    }

    #[test]
    fn titles_without_a_file_parse() {
        let s = Signature::parse("fs-corrupt: inside op 3 (pwrite)").expect("parse");
        assert_eq!(s.verdict, Verdict::FsCorrupt);
        assert_eq!(s.file, None);
        assert!(s.at.inside);
        let m = Signature::parse("size-loss: f0 size 0, allowed {4096} after op 5 (fdatasync)")
            .expect("size");
        assert_eq!(m.file.as_deref(), Some("f0"));
        assert_eq!(m.at.kind, "fdatasync");
        assert!(Signature::parse("no title here").is_err());
        assert!(Signature::parse("nonsense: f0 after op 1 (fsync)").is_err());
    }

    #[test]
    fn mutant_none_means_the_stock_kernel() {
        assert_eq!(parse_mutant("m5\n"), Some("m5".into()));
        assert_eq!(parse_mutant("none"), None);
        assert_eq!(parse_mutant(""), None);
    }
}
