//! `powercut kernel list` and `powercut kernel kconfig TREE`.

use std::path::Path;

use anyhow::Context;

use crate::cache_dir::cache_root;
use crate::image::kernel::cached::{self, Headers};
use crate::image::kernel::kconfig::kconfig;

/// `powercut kernel list`: one line per cached kernel.
pub fn kernel_list() -> anyhow::Result<()> {
    let cache = cache_root();
    let kernels = cached::list(&cache).context("listing the cached kernels")?;
    if kernels.is_empty() {
        println!(
            "no cached kernels in {}: run `ci/setup` (and `ci/setup --kernels \"bookworm sid\"` for more)",
            cache.join("kernel").display()
        );
        return Ok(());
    }
    let default = crate::image::kernel::find_kernel_deb(&cache.join("kernel")).ok();
    let width = kernels
        .iter()
        .map(|k| k.release.len())
        .max()
        .unwrap_or(7)
        .max(7);
    println!("{:width$}  {:7}  SOURCE", "RELEASE", "HEADERS");
    for k in &kernels {
        let headers = match &k.headers {
            Headers::Yes(_) => "yes".to_owned(),
            Headers::No(_) => "no".to_owned(),
        };
        let mark = if default.as_deref() == Some(k.location.as_path()) {
            " (default)"
        } else {
            ""
        };
        println!("{:width$}  {headers:7}  {}{mark}", k.release, k.source);
        if let Headers::No(why) = &k.headers {
            println!("{:width$}           no mutants: {why}", "");
        }
    }
    Ok(())
}

/// `powercut kernel kconfig TREE`.
pub fn kernel_kconfig(tree: &Path) -> anyhow::Result<()> {
    let report = kconfig(tree).with_context(|| format!("preparing {}", tree.display()))?;
    if report.enabled.is_empty() {
        println!(
            "{}: .config already has everything powercut needs",
            tree.display()
        );
    } else {
        println!("{}: turned on {}", tree.display(), report.enabled.join(" "));
    }
    println!(
        "next: make -C {} -j$(nproc), then powercut campaign --kernel {}",
        tree.display(),
        tree.display()
    );
    Ok(())
}
