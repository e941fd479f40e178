//! Checking what was found on disk against an [`Expectation`]: the verdict and the findings
//! that explain it (file, byte range, the allowed versions with the op that wrote each, the
//! bytes found).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::expect::{Existence, Expectation, FileState, Observed};
use super::meta::MetaMismatch;
use super::verdict::Verdict;
use super::words::{SizeSet, WordSpan, WordVersion, WORD};
use crate::namespace::NodeKind;

mod names;

/// At most this many findings are reported per file (the verdict does not depend on it).
pub const MAX_FINDINGS_PER_FILE: usize = 16;
/// At most this many bytes of a range are kept in a finding's `expected` and `found`.
pub const FINDING_BYTES: usize = 512;

/// One allowed content of a finding's byte range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedVersion {
    /// The op that wrote it; `None` for never-written zeros.
    pub op: Option<usize>,
    /// Its bytes over the range (at most [`FINDING_BYTES`]).
    pub bytes: Vec<u8>,
}

/// One discrepancy between the oracle and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Kind: data-loss, size-loss, missing-file or unexpected-file.
    pub verdict: Verdict,
    /// File name.
    pub file: String,
    /// First byte of the range (data-loss), else 0.
    pub start: u64,
    /// One past the last byte of the range (data-loss), else 0.
    pub end: u64,
    /// Allowed contents of the range, oldest first; one entry when the range was durable.
    pub expected: Vec<AllowedVersion>,
    /// Bytes found in the range (at most [`FINDING_BYTES`]).
    pub found: Vec<u8>,
    /// Allowed sizes (size-loss).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_sizes: Option<SizeSet>,
    /// Size found, when the file exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_size: Option<u64>,
    /// The op whose promise (fsync, msync, flush, sync) made the expected bytes durable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promised_by: Option<usize>,
    /// Crash point, as "after op 7 (fsync)".
    pub at: String,
    /// The metadata value that does not match (metadata-loss).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<MetaMismatch>,
}

impl Finding {
    /// One line, e.g. `data-loss: f2 [4096..8192) after op 7 (fsync)`.
    pub fn title(&self) -> String {
        match self.verdict {
            Verdict::DataLoss => {
                format!(
                    "{}: {} [{}..{}) {}",
                    self.verdict, self.file, self.start, self.end, self.at
                )
            }
            Verdict::SizeLoss => format!(
                "{}: {} size {}, allowed {} {}",
                self.verdict,
                self.file,
                self.found_size.unwrap_or(0),
                self.allowed_sizes
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string),
                self.at
            ),
            Verdict::MetadataLoss => match &self.meta {
                Some(m) => format!(
                    "{}: {} {} {}, allowed {} {}",
                    self.verdict,
                    self.file,
                    m.field,
                    m.found,
                    m.allowed.join(" | "),
                    self.at
                ),
                None => format!("{}: {} {}", self.verdict, self.file, self.at),
            },
            _ => format!("{}: {} {}", self.verdict, self.file, self.at),
        }
    }
}

/// Result of [`Expectation::check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// `Pass`, or the most telling finding's kind (missing-file, unexpected-file,
    /// data-loss, size-loss, in that order).
    pub verdict: Verdict,
    /// Every discrepancy (capped per file at [`MAX_FINDINGS_PER_FILE`]).
    pub findings: Vec<Finding>,
}

impl Expectation {
    /// Check observed files (by name) against the expectation. A name the expectation has
    /// but `observed` lacks counts as absent; names it does not know are ignored.
    pub fn check(&self, observed: &BTreeMap<String, Observed>) -> CheckResult {
        let at = self.crash_label();
        let mut findings = Vec::new();
        let absent = Observed::absent();
        for (name, exp) in &self.files {
            let obs = observed.get(name).unwrap_or(&absent);
            let bare = |verdict| Finding {
                verdict,
                file: name.clone(),
                start: 0,
                end: 0,
                expected: Vec::new(),
                found: Vec::new(),
                allowed_sizes: None,
                found_size: obs.exists.then_some(obs.data.len() as u64),
                promised_by: exp.durable_by,
                at: at.clone(),
                meta: None,
            };
            match (obs.exists, exp.existence) {
                (false, Existence::MustExist) => findings.push(bare(Verdict::MissingFile)),
                (false, _) => {}
                (true, Existence::MustNotExist) => findings.push(bare(Verdict::UnexpectedFile)),
                (true, _) if exp.states.is_empty() => findings.push(bare(Verdict::UnexpectedFile)),
                (true, _) => {
                    let kinded: Vec<&FileState> =
                        exp.states.iter().filter(|s| s.kind == obs.kind).collect();
                    if let Some(f) = names::kind_finding(name, obs, &kinded, &at) {
                        findings.push(f);
                        continue;
                    }
                    if obs.kind != NodeKind::File {
                        continue;
                    }
                    // When no state matches, the findings shown (and the bucket) are those
                    // of the inode the file most likely is: one whose allowed sizes hold the
                    // size found, then the fewest findings, then the current inode (first).
                    // Counting findings alone could blame an older inode the name may still
                    // refer to (a rename not yet durable) for a loss in the current one.
                    let size = obs.data.len() as u64;
                    let mut best: Option<((bool, usize), Vec<Finding>)> = None;
                    for state in kinded {
                        let f = check_state(state, name, obs, &at);
                        if f.is_empty() {
                            best = None;
                            break;
                        }
                        let rank = (!state.sizes.contains(size), f.len());
                        match &best {
                            Some((b, _)) if *b <= rank => {}
                            _ => best = Some((rank, f)),
                        }
                    }
                    findings.extend(best.map(|(_, f)| f).unwrap_or_default());
                }
            }
        }
        findings.extend(names::link_count_findings(self, observed, &at));
        let verdict = findings
            .iter()
            .map(|f| f.verdict)
            .min_by_key(Verdict::severity_rank)
            .unwrap_or(Verdict::Pass);
        CheckResult { verdict, findings }
    }
}

/// Findings of what was found against one state (empty when it matches).
fn check_state(state: &FileState, file: &str, obs: &Observed, at: &str) -> Vec<Finding> {
    let data = &obs.data[..];
    let mut out = Vec::new();
    if let Some(found) = &obs.meta {
        for m in state.meta.mismatches(state.seed, found) {
            out.push(Finding {
                verdict: Verdict::MetadataLoss,
                file: file.to_string(),
                start: 0,
                end: 0,
                expected: Vec::new(),
                found: Vec::new(),
                allowed_sizes: None,
                found_size: Some(data.len() as u64),
                promised_by: m.promised_by,
                at: at.to_string(),
                meta: Some(m),
            });
        }
    }
    let size = data.len() as u64;
    if !state.sizes.contains(size) {
        out.push(Finding {
            verdict: Verdict::SizeLoss,
            file: file.to_string(),
            start: 0,
            end: 0,
            expected: Vec::new(),
            found: Vec::new(),
            allowed_sizes: Some(state.sizes.clone()),
            found_size: Some(size),
            promised_by: None,
            at: at.to_string(),
            meta: None,
        });
    }
    let nwords = size.div_ceil(WORD);
    for span in state.words.iter().take_while(|s| s.start < nwords) {
        // The current version first: it is the usual match.
        let mut versions: Vec<&WordVersion> = vec![span.current()];
        versions.extend(span.allowed().filter(|v| *v != span.current()));
        let mut run: Option<(u64, u64)> = None;
        for w in span.start..span.end.min(nwords) {
            let lo = w * WORD;
            let n = (size - lo).min(WORD) as usize;
            let found = &data[lo as usize..lo as usize + n];
            if versions.iter().any(|v| v.matches(state.seed, w, found)) {
                continue;
            }
            run = match run {
                Some((a, b)) if b == w => Some((a, w + 1)),
                Some(r) => {
                    out.push(data_finding(state, span, r, file, data, at));
                    Some((w, w + 1))
                }
                None => Some((w, w + 1)),
            };
            if out.len() >= MAX_FINDINGS_PER_FILE {
                return out;
            }
        }
        if let Some(r) = run {
            out.push(data_finding(state, span, r, file, data, at));
        }
        if out.len() >= MAX_FINDINGS_PER_FILE {
            break;
        }
    }
    out
}

/// A data-loss finding for words `[a, b)` of `span`.
fn data_finding(
    state: &FileState,
    span: &WordSpan,
    (a, b): (u64, u64),
    file: &str,
    data: &[u8],
    at: &str,
) -> Finding {
    let start = a * WORD;
    let end = (b * WORD).min(data.len() as u64);
    let shown = (end - start).min(FINDING_BYTES as u64);
    let bytes_of = |v: &WordVersion| {
        let mut out = Vec::with_capacity(shown as usize);
        let mut w = a;
        while (out.len() as u64) < shown {
            out.extend_from_slice(&v.bytes(state.seed, w));
            w += 1;
        }
        out.truncate(shown as usize);
        out
    };
    let mut expected: Vec<AllowedVersion> = Vec::new();
    for v in span.allowed() {
        let av = AllowedVersion {
            op: v.op,
            bytes: bytes_of(v),
        };
        if !expected.contains(&av) {
            expected.push(av);
        }
    }
    Finding {
        verdict: Verdict::DataLoss,
        file: file.to_string(),
        start,
        end,
        expected,
        found: data[start as usize..(start + shown) as usize].to_vec(),
        allowed_sizes: None,
        found_size: Some(data.len() as u64),
        promised_by: span.durable_by,
        at: at.to_string(),
        meta: None,
    }
}
