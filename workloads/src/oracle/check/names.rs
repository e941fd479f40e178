//! The namespace part of a check: that a name shows the kind of object the oracle allows
//! (a regular file, a directory, a symlink with one of its allowed texts, a whiteout), and
//! that each regular file's link count equals the names found for it.

use std::collections::BTreeMap;

use super::{Expectation, FileState, Finding, Observed, Verdict};
use crate::namespace::NodeKind;

fn finding(verdict: Verdict, file: String, at: &str) -> Finding {
    Finding {
        verdict,
        file,
        start: 0,
        end: 0,
        expected: Vec::new(),
        found: Vec::new(),
        allowed_sizes: None,
        found_size: None,
        promised_by: None,
        at: at.to_string(),
        meta: None,
    }
}

/// A finding when `obs` (present) is an object of a kind none of `kinded` (the states of
/// its kind) allows, or a symlink whose text none of them has.
pub(super) fn kind_finding(
    name: &str,
    obs: &Observed,
    kinded: &[&FileState],
    at: &str,
) -> Option<Finding> {
    if kinded.is_empty() {
        return Some(finding(
            Verdict::UnexpectedFile,
            format!("{name} (a {} where none may be)", obs.kind.name()),
            at,
        ));
    }
    if obs.kind == NodeKind::Symlink && !kinded.iter().any(|s| s.target == obs.target) {
        let mut f = finding(Verdict::DataLoss, format!("{name} (symlink text)"), at);
        f.found = obs.target.clone().unwrap_or_default().into_bytes();
        f.expected = kinded
            .iter()
            .map(|s| super::AllowedVersion {
                op: None,
                bytes: s.target.clone().unwrap_or_default().into_bytes(),
            })
            .collect();
        return Some(f);
    }
    None
}

/// A finding for each regular file whose link count differs from the number of the
/// workload's names found for its inode (every name that can link to it is one the
/// workload mentions, and all of them were read).
pub(super) fn link_count_findings(
    exp: &Expectation,
    observed: &BTreeMap<String, Observed>,
    at: &str,
) -> Vec<Finding> {
    let mut names_of: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for (name, obs) in observed {
        if obs.exists && obs.kind == NodeKind::File && obs.ino != 0 && exp.files.contains_key(name)
        {
            names_of.entry(obs.ino).or_default().push(name);
        }
    }
    let mut out = Vec::new();
    for names in names_of.values() {
        let first = names[0];
        let nlink = observed[first].nlink;
        if nlink != 0 && nlink != names.len() as u64 {
            let f = finding(
                Verdict::FsCorrupt,
                format!(
                    "{} (link count {nlink}, {} of the workload's names found: {})",
                    first,
                    names.len(),
                    names.join(", ")
                ),
                at,
            );
            out.push(f);
        }
    }
    // Names found for one inode must be allowed to be one inode of the model.
    for names in names_of.values().filter(|n| n.len() > 1) {
        let sets: Vec<Vec<usize>> = names
            .iter()
            .map(|n| {
                exp.files[*n]
                    .states
                    .iter()
                    .filter(|s| s.kind == NodeKind::File)
                    .map(|s| s.inode)
                    .collect()
            })
            .collect();
        let common = sets[0].iter().any(|i| sets.iter().all(|s| s.contains(i)));
        if !common {
            out.push(finding(
                Verdict::UnexpectedFile,
                format!(
                    "{} (one inode, but no file the workload linked)",
                    names.join(", ")
                ),
                at,
            ));
        }
    }
    out
}
