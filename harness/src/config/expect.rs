//! Expected outcomes per kernel (`expect:` in the campaign config): which kernels a
//! campaign expects to fail, with which failure buckets in which items, and the judgement of
//! a finished campaign against them, which decides its exit status. A campaign that keeps a
//! known kernel bug as a regression test (`ci/findings.yaml`) says "this fails on 6.15 and
//! later with these buckets, and passes on 6.12"; a run where an expected failure does not
//! come is not a pass.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::records::TrialItem;

/// Most rules in `expect:`.
pub const MAX_RULES: usize = 16;

/// One rule: the kernels it covers and the failures expected on them (none: every check
/// passes). The first rule that covers a kernel applies to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectRule {
    /// Kernel versions covered: comparisons joined by commas (`">=6.15"`, `">=6.15, <7.4"`)
    /// against the leading `major.minor.patch` of the kernel release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<String>,
    /// A regex the kernel release (`uname -r`) must match, e.g. `"-daxfix$"` for a patched
    /// build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Why (printed with the judgement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Failures expected on these kernels; empty: every check must pass.
    #[serde(default)]
    pub fail: Vec<ExpectedFailures>,
}

/// Every listed item must fail with a bucket matching every listed regex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailures {
    /// Items: workload names, or seed numbers.
    pub workloads: Vec<String>,
    /// Regexes on bucket ids (`data-loss of mmap_data promised by fsync (cache, ext4, stock)`).
    pub buckets: Vec<String>,
}

/// A comparison of a version requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
}

/// The leading `major.minor.patch` of a kernel release (`7.2.13+deb14-amd64` → 7.2.13,
/// `7.3-amd64` → 7.3.0), or `None` when it does not start with a number.
pub fn release_version(release: &str) -> Option<Version> {
    let head: String = release
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = head.split('.').filter(|p| !p.is_empty());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    Some((major, minor, patch))
}

/// A `major.minor.patch` version.
type Version = (u64, u64, u64);

/// Parse `">=6.15, <7.4"` into comparisons.
fn parse_versions(text: &str) -> Result<Vec<(Cmp, Version)>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (cmp, rest) = [
            (">=", Cmp::Ge),
            ("<=", Cmp::Le),
            ("==", Cmp::Eq),
            (">", Cmp::Gt),
            ("<", Cmp::Lt),
            ("=", Cmp::Eq),
        ]
        .iter()
        .find_map(|(p, c)| part.strip_prefix(p).map(|r| (*c, r.trim())))
        .ok_or_else(|| {
            format!("`{part}`: a comparison is >=, >, <=, < or = and a version, e.g. \">=6.15\"")
        })?;
        let ok = !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == '.');
        let v = release_version(rest)
            .filter(|_| ok)
            .ok_or_else(|| format!("`{part}`: `{rest}` is not a version like 6.15 or 6.12.95"))?;
        out.push((cmp, v));
    }
    Ok(out)
}

impl ExpectRule {
    /// Whether this rule covers the kernel `release` (both matchers, when given).
    pub fn covers(&self, release: &str) -> bool {
        let by_version = self.versions.as_deref().is_none_or(|text| {
            let (Ok(reqs), Some(v)) = (parse_versions(text), release_version(release)) else {
                return false;
            };
            reqs.iter().all(|(c, want)| match c {
                Cmp::Ge => v >= *want,
                Cmp::Gt => v > *want,
                Cmp::Le => v <= *want,
                Cmp::Lt => v < *want,
                Cmp::Eq => v == *want,
            })
        });
        let by_release = self
            .release
            .as_deref()
            .is_none_or(|r| regex::Regex::new(r).is_ok_and(|re| re.is_match(release)));
        by_version && by_release
    }

    /// What the rule says, for messages: `versions >=6.15`, `release /-daxfix$/`.
    fn label(&self, index: usize) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.versions {
            parts.push(format!("versions {v}"));
        }
        if let Some(r) = &self.release {
            parts.push(format!("release /{r}/"));
        }
        format!("rule {} ({})", index + 1, parts.join(", "))
    }
}

/// Check the rules: at most [`MAX_RULES`], each with a matcher, valid versions and regexes,
/// and non-empty lists. The message names the rule (`expect[1].fail[0].buckets`).
pub fn validate(rules: &[ExpectRule]) -> Result<(), String> {
    if rules.len() > MAX_RULES {
        return Err(format!("{} rules, more than {MAX_RULES}", rules.len()));
    }
    for (i, r) in rules.iter().enumerate() {
        let at = |field: &str, m: String| format!("expect[{i}].{field}: {m}");
        if r.versions.is_none() && r.release.is_none() {
            return Err(format!(
                "expect[{i}]: give `versions` (e.g. \">=6.15\") or `release` (a regex), or both"
            ));
        }
        if let Some(v) = &r.versions {
            parse_versions(v).map_err(|m| at("versions", m))?;
        }
        if let Some(re) = &r.release {
            regex::Regex::new(re).map_err(|e| at("release", format!("bad regex `{re}`: {e}")))?;
        }
        for (j, f) in r.fail.iter().enumerate() {
            let field = |name: &str| format!("fail[{j}].{name}");
            if f.workloads.is_empty() {
                return Err(at(
                    &field("workloads"),
                    "empty: name at least one item".into(),
                ));
            }
            if f.buckets.is_empty() {
                return Err(at(
                    &field("buckets"),
                    "empty: give at least one regex".into(),
                ));
            }
            for b in &f.buckets {
                regex::Regex::new(b)
                    .map_err(|e| at(&field("buckets"), format!("bad regex `{b}`: {e}")))?;
            }
        }
    }
    Ok(())
}

/// Every item the rules name that is not among `items` (the campaign's workload names and
/// seeds), as `expect[i].fail[j].workloads: NAME`.
pub fn unknown_items(rules: &[ExpectRule], items: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        for (j, f) in r.fail.iter().enumerate() {
            for w in f.workloads.iter().filter(|w| !items.contains(w)) {
                out.push(format!("expect[{i}].fail[{j}].workloads: {w}"));
            }
        }
    }
    out
}

/// What one kernel of a finished campaign showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelOutcome {
    /// The kernel's name in the campaign (its release, or its `kernels:` entry).
    pub name: String,
    /// Its release (`uname -r`).
    pub release: String,
    /// Failure buckets that were not suppressed: bucket id and the items that showed it
    /// (workload names, seed numbers).
    pub failures: Vec<(String, Vec<String>)>,
    /// Items with an infrastructure problem.
    pub infra: usize,
    /// The items that ran on this kernel: expectations naming other items do not apply
    /// (a campaign narrowed with `--workload` or `--seeds`).
    pub ran: Vec<String>,
}

/// The judgement of one kernel against the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// The kernel's name.
    pub kernel: String,
    /// The rule that applied (index and label), if any.
    pub rule: Option<(usize, String)>,
    /// Expected (item, bucket regex) pairs that no failure matched.
    pub missing: Vec<(String, String)>,
    /// How many (item, bucket regex) pairs were expected.
    pub expected: usize,
    /// Failures (bucket, items) that no expectation names.
    pub unexpected: Vec<(String, Vec<String>)>,
    /// Items with an infrastructure problem on this kernel.
    pub infra: usize,
}

impl Judgement {
    /// The rule applied, everything it expected came and nothing else; a pass expected on
    /// a kernel with infrastructure problems is not proven.
    #[cfg(test)]
    pub fn met(&self) -> bool {
        self.rule.is_some()
            && self.missing.is_empty()
            && self.unexpected.is_empty()
            && !(self.expected == 0 && self.infra > 0)
    }
}

/// Judge one kernel: the first rule covering its release, then each expected (item,
/// bucket) pair against its failures, and its failures against the expectations.
pub fn judge(rules: &[ExpectRule], k: &KernelOutcome) -> Judgement {
    let Some((index, rule)) = rules.iter().enumerate().find(|(_, r)| r.covers(&k.release)) else {
        return Judgement {
            kernel: k.name.clone(),
            rule: None,
            missing: Vec::new(),
            expected: 0,
            unexpected: Vec::new(),
            infra: k.infra,
        };
    };
    let regexes: Vec<(&ExpectedFailures, Vec<regex::Regex>)> = rule
        .fail
        .iter()
        .map(|f| {
            let res = f
                .buckets
                .iter()
                .filter_map(|b| regex::Regex::new(b).ok())
                .collect();
            (f, res)
        })
        .collect();
    let mut missing = Vec::new();
    let mut expected = 0;
    for (f, res) in &regexes {
        for w in f.workloads.iter().filter(|w| k.ran.contains(w)) {
            for (re, text) in res.iter().zip(&f.buckets) {
                expected += 1;
                let seen = k
                    .failures
                    .iter()
                    .any(|(bucket, items)| re.is_match(bucket) && items.contains(w));
                if !seen {
                    missing.push((w.clone(), text.clone()));
                }
            }
        }
    }
    let mut unexpected = Vec::new();
    for (bucket, items) in &k.failures {
        let stray: Vec<String> = items
            .iter()
            .filter(|item| {
                !regexes.iter().any(|(f, res)| {
                    f.workloads.contains(item) && res.iter().any(|re| re.is_match(bucket))
                })
            })
            .cloned()
            .collect();
        if !stray.is_empty() {
            unexpected.push((bucket.clone(), stray));
        }
    }
    Judgement {
        kernel: k.name.clone(),
        rule: Some((index, rule.label(index))),
        missing,
        expected,
        unexpected,
        infra: k.infra,
    }
}

/// Exit status: an expected failure that did not come, on a kernel without infrastructure
/// problems.
pub const UNMET: i32 = crate::exit::UNMET;

/// The campaign's exit status given the judgements and the status it would have without
/// `expect:` (`natural`: 0 pass, 1 failures, 69 infrastructure, 130 interrupted). An
/// expected failure that did not come makes it [`UNMET`] (or 69 when that kernel also had
/// infrastructure problems: nothing was proven there); otherwise the natural status stands,
/// so a kernel expected to fail still exits 1 and one expected to pass exits 0.
pub fn exit_status(judgements: &[Judgement], natural: i32) -> i32 {
    if natural == 130 {
        return natural;
    }
    let missing = judgements.iter().filter(|j| !j.missing.is_empty());
    let (clean, infra): (Vec<&Judgement>, Vec<&Judgement>) = missing.partition(|j| j.infra == 0);
    if !clean.is_empty() {
        UNMET
    } else if !infra.is_empty() {
        69
    } else {
        natural
    }
}

impl fmt::Display for Judgement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((_, label)) = &self.rule else {
            return write!(
                f,
                "{}: no rule covers this kernel (no expectation)",
                self.kernel
            );
        };
        let verdict = match (self.missing.is_empty(), self.unexpected.is_empty()) {
            (true, true) if self.expected == 0 && self.infra > 0 => {
                "NOT PROVEN: no failure, but items with infrastructure problems"
            }
            (true, true) if self.expected == 0 => "met: every check passed, as expected",
            (true, true) => "met: it fails exactly as expected",
            (true, false) => "NOT MET: failures nobody expected",
            (false, _) if self.infra > 0 => {
                "NOT PROVEN: expected failures missing, infrastructure problems"
            }
            (false, _) => "NOT MET: expected failures did not come",
        };
        write!(
            f,
            "{}: {label}: {} of {} expected (item, bucket) pairs seen, {} unexpected bucket(s): {verdict}",
            self.kernel,
            self.expected - self.missing.len(),
            self.expected,
            self.unexpected.len()
        )?;
        for (item, bucket) in &self.missing {
            write!(f, "\n    missing: {item} with a bucket matching /{bucket}/")?;
        }
        for (bucket, items) in &self.unexpected {
            write!(f, "\n    unexpected: {bucket} in {}", items.join(", "))?;
        }
        Ok(())
    }
}

/// An item as `expect:` names it: a workload name or a seed number.
pub fn item_name(item: &TrialItem) -> String {
    match item {
        TrialItem::Seed(s) => s.to_string(),
        TrialItem::Workload(n) => n.clone(),
    }
}

#[cfg(test)]
mod tests;
