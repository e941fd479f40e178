//! Coverage in a run, both crash models: the plugin argument (`cov=` beside the cache
//! model's trace, or the plugin in coverage-only mode for the snapshot model), the kallsyms
//! of the workload VM (read before the first op, in set-up), and after QEMU exits, the
//! mapping of the plugin's blocks onto the kernel's code map into `coverage.json`.
//!
//! The code map is built once per campaign and kernel, by the first run that finishes (it
//! needs one VM's kallsyms for the kernel image's functions), and cached in
//! `<cache>/coverage/` under the kernel's bzImage hash: other runs wait for it. A coverage
//! problem never fails a run: it is logged once and the run has no `coverage.json`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::start::StartMode;
use crate::coverage::diff::PatchFunctions;
use crate::coverage::kernel_code::{build_map, KernelFiles};
use crate::coverage::subsystems::SUBSYSTEMS;
use crate::coverage::symbols::KernelSymbols;
use crate::coverage::{
    finish_run, read_json, write_json, CodeMap, SeedCoverage, RAW_FILE, SEED_FILE,
};
use crate::vm::cmdline::qemu_opt_value;
use crate::vm::Vm;

/// What runs need to record coverage; one per campaign and kernel, shared by its workers.
#[derive(Debug, Clone)]
pub struct CoverageSetup {
    /// `libpowercut_plugin.so`.
    pub plugin: PathBuf,
    /// The kernel's files the map is built from.
    pub files: KernelFiles,
    /// Where the map is cached across campaigns.
    pub cached_map: PathBuf,
    /// Where the campaign keeps its copy of the map (`coverage-map.json`), if anywhere.
    pub map_out: Option<PathBuf>,
    /// A run's coverage file name in its directory (`coverage.json`; per kernel in a matrix).
    pub seed_file: String,
    /// The functions of `--coverage-diff`'s patch (mapped even outside the subsystems).
    pub patch: Option<Arc<PatchFunctions>>,
    map: Arc<Mutex<Option<Arc<CodeMap>>>>,
    restored_kallsyms: Arc<OnceLock<String>>,
    said: Arc<OnceLock<()>>,
}

impl CoverageSetup {
    /// Coverage for the kernel of `files` with `plugin`; the map is cached as `cached_map`.
    pub fn new(plugin: PathBuf, files: KernelFiles, cached_map: PathBuf) -> CoverageSetup {
        CoverageSetup {
            plugin,
            files,
            cached_map,
            map_out: None,
            seed_file: SEED_FILE.to_owned(),
            patch: None,
            map: Arc::default(),
            restored_kallsyms: Arc::default(),
            said: Arc::default(),
        }
    }

    /// Where the plugin writes in an item's directory `dir`.
    pub fn raw_path(dir: &Path) -> PathBuf {
        dir.join(RAW_FILE)
    }

    /// `,cov=PATH` for the cache model's plugin argument.
    pub fn plugin_suffix(dir: &Path) -> String {
        format!(
            ",cov={}",
            qemu_opt_value(&Self::raw_path(dir).to_string_lossy())
        )
    }

    /// The plugin in coverage-only mode (the snapshot model's runs).
    pub fn coverage_only_args(&self, dir: &Path) -> Vec<String> {
        vec![
            "-plugin".into(),
            format!(
                "{}{}",
                qemu_opt_value(&self.plugin.to_string_lossy()),
                Self::plugin_suffix(dir)
            ),
        ]
    }

    /// Say a coverage problem once per campaign (later ones at debug level).
    pub fn warn(&self, what: &str) {
        if self.said.set(()).is_ok() {
            tracing::warn!("coverage: {what} (said once; the runs go on without coverage)");
        } else {
            tracing::debug!("coverage: {what}");
        }
    }

    /// The code map, built from `kallsyms` (a VM's) the first time.
    fn map(&self, kallsyms: &str) -> Result<Arc<CodeMap>, String> {
        let mut g = self
            .map
            .lock()
            .map_err(|_| "a map build panicked".to_owned())?;
        if let Some(m) = g.as_ref() {
            return Ok(Arc::clone(m));
        }
        let map = match read_json::<CodeMap>(&self.cached_map) {
            Ok(m) if m.schema == crate::coverage::map::MAP_SCHEMA => m,
            _ => {
                let syms = KernelSymbols::parse(kallsyms).map_err(|e| e.to_string())?;
                let t = std::time::Instant::now();
                let names = self
                    .patch
                    .iter()
                    .flat_map(|p| p.functions.iter().map(|f| f.name.clone()))
                    .collect();
                let m =
                    build_map(&self.files, &syms, SUBSYSTEMS, &names).map_err(|e| e.to_string())?;
                tracing::info!(
                    "coverage: code map of {} built in {:.1} s ({} functions)",
                    m.kernel,
                    t.elapsed().as_secs_f64(),
                    m.functions.len()
                );
                if let Some(d) = self.cached_map.parent() {
                    std::fs::create_dir_all(d).ok();
                }
                // A cache that cannot be written costs the next campaign a rebuild.
                write_json(&self.cached_map, &m).ok();
                m
            }
        };
        if let Some(out) = &self.map_out {
            write_json(out, &map).map_err(|e| e.to_string())?;
        }
        let map = Arc::new(map);
        *g = Some(Arc::clone(&map));
        Ok(map)
    }

    /// The code map, once a run has built or read it (`None` before that, or after a
    /// build that panicked).
    pub fn built_map(&self) -> Option<Arc<CodeMap>> {
        self.map.lock().ok()?.as_ref().map(Arc::clone)
    }

    /// After QEMU exited: map the run's blocks in `dir` through `kallsyms` into
    /// `coverage.json`. A problem is said once and the run has no coverage.
    pub fn finish(&self, dir: &Path, kallsyms: Option<&str>) -> Option<SeedCoverage> {
        let raw = Self::raw_path(dir);
        let res = kallsyms
            .ok_or_else(|| "the workload VM's kallsyms could not be read".to_owned())
            .and_then(|k| {
                let map = self.map(k)?;
                let at_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                let out = dir.join(&self.seed_file);
                finish_run(&raw, k, &map, &out, at_ms).map_err(|e| e.to_string())
            });
        match res {
            Ok(c) => Some(c),
            Err(e) => {
                self.warn(&e);
                // 1–2 MiB a run: not kept for a run whose coverage could not be mapped.
                std::fs::remove_file(&raw).ok();
                None
            }
        }
    }
}

impl CoverageSetup {
    /// The workload VM's kallsyms (text symbols), through the per-kernel cache of
    /// [`super::cache_lost`]; `None` (said once) when it cannot be read. Restored VMs are
    /// copies of one booted state, whose modules were loaded before it was saved: their
    /// modules sit at the same addresses (a mutant or a user's module loaded later moves
    /// none of them), so the first restored run's kallsyms serves every restored run and
    /// costs them no guest command. A cold-booted VM reads its own (module addresses differ
    /// from boot to boot).
    pub fn kallsyms(&self, vm: &mut Vm, image_hash: &str, started: StartMode) -> Option<String> {
        let restored = started == StartMode::Restore;
        if let Some(t) = self.restored_kallsyms.get().filter(|_| restored) {
            return Some(t.clone());
        }
        match super::cache_lost::kallsyms_text(vm, image_hash) {
            Ok(t) => {
                if restored {
                    // Another restored run may have set it first: the same text.
                    self.restored_kallsyms.set(t.clone()).ok();
                }
                Some(t)
            }
            Err(e) => {
                self.warn(&format!("reading /proc/kallsyms: {e}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coverage_only_plugin_argument_escapes_commas() {
        let files = KernelFiles {
            release: "r".into(),
            bzimage: "/k/bz".into(),
            modules_dir: "/k/m".into(),
            sources: None,
        };
        let cov = CoverageSetup::new("/p,q/libpowercut_plugin.so".into(), files, "/c".into());

        let args = cov.coverage_only_args(Path::new("/runs/a,b/seeds/1"));

        assert_eq!(
            args,
            [
                "-plugin",
                "/p,,q/libpowercut_plugin.so,cov=/runs/a,,b/seeds/1/coverage.raw"
            ]
        );
    }
}
