//! A kernel matrix (`kernels:` in the campaign config): every item runs on every kernel,
//! one kernel after the other into the same run directory and journal, each kernel's lines
//! tagged with its name ([`super::journal::KERNEL_KEY`]). Here: parsing the list, sharing
//! the time budget between the kernels, and the kernel × verdict table of the summary.

use std::collections::BTreeMap;
use std::time::Duration;

use workloads::oracle::Verdict;

use super::fold::Totals;
use crate::image::KernelSpec;

/// Most kernels in one matrix.
pub const MAX_KERNELS: usize = 8;

/// The kernels of `kernels:`, named by their spec text: at most [`MAX_KERNELS`], each a
/// valid spec, each name once; refused together with `kernel` (`has_kernel`).
pub fn parse_kernels(
    specs: &[String],
    has_kernel: bool,
) -> Result<Vec<(String, KernelSpec)>, String> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    if has_kernel {
        return Err("give either `kernel` (one kernel) or `kernels` (a matrix), not both".into());
    }
    if specs.len() > MAX_KERNELS {
        return Err(format!("{} kernels, more than {MAX_KERNELS}", specs.len()));
    }
    let mut out: Vec<(String, KernelSpec)> = Vec::new();
    for text in specs {
        let name = text.trim().to_owned();
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("`{name}` is listed twice"));
        }
        let spec = KernelSpec::parse(&name).map_err(|e| e.to_string())?;
        out.push((name, spec));
    }
    Ok(out)
}

/// The share of the time budget left for the next kernel when `kernels_left` (≥ 1) kernels
/// are still to run: what is left, split evenly, so every kernel of the matrix gets its
/// turn and one kernel's seeds never use up the others' time.
pub fn budget_share(left: Duration, kernels_left: usize) -> Duration {
    let n = u32::try_from(kernels_left.max(1)).unwrap_or(u32::MAX);
    left / n
}

/// The kernel × verdict table: one row per kernel (checks by verdict, seeds, infra).
pub fn verdict_table(rows: &[(String, BTreeMap<Verdict, usize>, Totals)]) -> String {
    let verdicts: Vec<Verdict> = Verdict::ALL
        .iter()
        .copied()
        .filter(|v| {
            rows.iter()
                .any(|(_, by, _)| by.get(v).is_some_and(|n| *n > 0))
        })
        .collect();
    let width = rows
        .iter()
        .map(|(n, _, _)| n.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut s = format!("\n  kernel matrix\n  {:<width$}  {:>6}", "kernel", "items");
    for v in &verdicts {
        s.push_str(&format!("  {:>12}", v.name()));
    }
    s.push_str(&format!("  {:>6}\n", "infra"));
    for (name, by, t) in rows {
        s.push_str(&format!("  {name:<width$}  {:>6}", t.seeds));
        for v in &verdicts {
            s.push_str(&format!("  {:>12}", by.get(v).copied().unwrap_or(0)));
        }
        s.push_str(&format!("  {:>6}\n", t.infra));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_are_named_by_their_spec_and_listed_once() {
        let ok = parse_kernels(&["6.1.0-50-amd64".into(), "./k.deb".into()], false).expect("valid");
        let twice = parse_kernels(&["6.1.0-50-amd64".into(), "6.1.0-50-amd64".into()], false);
        let both = parse_kernels(&["6.1.0-50-amd64".into()], true);
        let many = parse_kernels(&vec!["x".to_owned(); 9], false);

        assert_eq!(ok[0].0, "6.1.0-50-amd64");
        assert!(twice.expect_err("twice").contains("listed twice"));
        assert!(both.expect_err("both").contains("not both"));
        assert!(many.expect_err("many").contains("more than 8"));
    }

    #[test]
    fn the_budget_is_shared_evenly_among_the_kernels_left() {
        let hour = Duration::from_secs(3600);

        assert_eq!(budget_share(hour, 3), Duration::from_secs(1200));
        assert_eq!(budget_share(hour, 0), hour);
    }

    #[test]
    fn the_table_has_a_row_per_kernel_and_a_column_per_verdict_seen() {
        let by1: BTreeMap<Verdict, usize> = [(Verdict::Pass, 9)].into();
        let by2: BTreeMap<Verdict, usize> = [(Verdict::Pass, 7), (Verdict::DataLoss, 2)].into();
        let t = Totals {
            seeds: 3,
            ..Totals::default()
        };

        let table = verdict_table(&[("6.1".into(), by1, t.clone()), ("7.2".into(), by2, t)]);

        assert!(
            table.contains("data-loss") && !table.contains("size-loss"),
            "{table}"
        );
        let row: Vec<&str> = table.lines().filter(|l| l.contains("7.2")).collect();
        assert_eq!(
            row[0].split_whitespace().collect::<Vec<_>>(),
            ["7.2", "3", "7", "2", "0"]
        );
    }
}
