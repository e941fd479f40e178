//! A kernel matrix (`kernels:` in the campaign config): every item runs on every kernel,
//! one kernel after the other into the same run directory and journal, each kernel's lines
//! tagged with its name ([`crate::journal::KERNEL_KEY`]). Here: parsing the list and sharing
//! the time budget between the kernels (the kernel × verdict table is [`crate::ui`]'s).

use std::time::Duration;

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
}
