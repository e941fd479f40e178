//! Your own kernel modules (`--module`, `modules:` in the campaign config), loaded in every
//! workload VM after the mount: what the user gives (a `.ko` file, or a kbuild source
//! directory built against the guest kernel like the mutant module, with `insmod`
//! arguments), the checks before any VM boots (syntax, the `.ko` fits the guest kernel,
//! unique names), and what is recorded of each (name, sha256).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::staging::Staging;
use super::{GuestKernel, ImageError};

/// Most modules one campaign loads.
pub const MAX_MODULES: usize = 16;
/// Longest `insmod` argument list of one module, in bytes.
pub const MAX_ARGS_BYTES: usize = 1024;
/// Largest `.ko` accepted, in bytes.
pub const MAX_KO_BYTES: u64 = 64 << 20;
/// Most files copied from a module source directory.
const MAX_SOURCE_FILES: usize = 1000;
/// Largest module source directory, in bytes.
const MAX_SOURCE_BYTES: u64 = 64 << 20;
/// Where the modules live in the guest (`<dir>/<name>.ko`).
pub const GUEST_DIR: &str = "lib/modules/user";

/// One module as the user gave it: `PATH [ARG...]` on the command line, `{path, args}` in
/// the config. `PATH` is a `.ko` file or a directory with a `Kbuild` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleSpec {
    /// The `.ko` file, or a kbuild source directory (built against the guest kernel).
    pub path: PathBuf,
    /// `insmod` arguments, `name=value` (or a bare `name`) each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// A module spec that cannot be used (bad input: exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleSpecError {
    /// Nothing given.
    #[error("empty module: give `PATH [NAME=VALUE...]`")]
    Empty,
    /// An argument that is not `name[=value]` with printable characters.
    #[error("module {path}: argument `{arg}` is not NAME=VALUE (NAME: letters, digits, `_`, `-`, `.`; VALUE: printable, no spaces or quotes)")]
    BadArg {
        /// The module.
        path: String,
        /// The argument.
        arg: String,
    },
    /// The arguments are too long.
    #[error("module {path}: arguments are {len} bytes, more than {MAX_ARGS_BYTES}")]
    ArgsTooLong {
        /// The module.
        path: String,
        /// Their length.
        len: usize,
    },
    /// The path is neither a `.ko` file nor a directory with a `Kbuild` file.
    #[error("module {path}: {why}")]
    BadPath {
        /// The module.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// Too many modules.
    #[error("{count} modules, more than {MAX_MODULES}")]
    TooMany {
        /// How many.
        count: usize,
    },
}

impl FromStr for ModuleSpec {
    type Err = ModuleSpecError;

    /// `PATH [ARG...]`, split at white space, like an `insmod` command line.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut words = s.split_whitespace();
        let path = words.next().ok_or(ModuleSpecError::Empty)?;
        let spec = ModuleSpec {
            path: PathBuf::from(path),
            args: words.map(str::to_owned).collect(),
        };
        spec.validate_args()?;
        Ok(spec)
    }
}

impl ModuleSpec {
    /// Check the arguments: `name[=value]`, bounded, nothing the guest shell could read as
    /// anything but one word.
    pub fn validate_args(&self) -> Result<(), ModuleSpecError> {
        let path = self.path.display().to_string();
        let len: usize = self.args.iter().map(|a| a.len() + 1).sum();
        if len > MAX_ARGS_BYTES {
            return Err(ModuleSpecError::ArgsTooLong { path, len });
        }
        for arg in &self.args {
            let (name, value) = arg.split_once('=').unwrap_or((arg, ""));
            let name_ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            let value_ok = value
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | '`' | '$'));
            if !name_ok || !value_ok {
                return Err(ModuleSpecError::BadArg {
                    path,
                    arg: arg.clone(),
                });
            }
        }
        Ok(())
    }

    /// Check the path on the host: a readable `.ko` file (ELF, at most [`MAX_KO_BYTES`]), or
    /// a directory with a `Kbuild` file.
    pub fn validate_path(&self) -> Result<(), ModuleSpecError> {
        let bad = |why: String| ModuleSpecError::BadPath {
            path: self.path.display().to_string(),
            why,
        };
        let meta = std::fs::metadata(&self.path).map_err(|e| bad(e.to_string()))?;
        if meta.is_dir() {
            if !self.path.join("Kbuild").is_file() {
                return Err(bad(
                    "a module source directory needs a Kbuild file (e.g. `obj-m := my_module.o`)"
                        .into(),
                ));
            }
            return Ok(());
        }
        if self.path.extension().is_none_or(|e| e != "ko") {
            return Err(bad(
                "not a .ko file or a kbuild source directory (compressed .ko.xz is not taken: decompress it)"
                    .into(),
            ));
        }
        let mut magic = [0u8; 4];
        use std::io::Read;
        let (mut f, _) = crate::input::open_regular(&self.path, MAX_KO_BYTES, ".ko")
            .map_err(|e| bad(e.to_string()))?;
        f.read_exact(&mut magic)
            .map_err(|e| bad(format!("reading it: {e}")))?;
        if &magic != b"\x7fELF" {
            return Err(bad("not an ELF file".into()));
        }
        // The module's own name is data: checked here, before any image work.
        let name = match modinfo(&self.path, "name") {
            Ok(n) if n.is_empty() => module_file_name(&self.path),
            Ok(n) => n,
            Err(ImageError::ModuleUnfit { why, .. }) => return Err(bad(why)),
            // modinfo missing: the image build says so.
            Err(_) => return Ok(()),
        };
        if !is_module_name(&name) {
            return Err(bad(format!(
                "its module name `{}` is not a module name (1 to {MAX_NAME_LEN} letters, \
                 digits, `_` or `-`)",
                name.escape_debug()
            )));
        }
        Ok(())
    }
}

/// Check a list of specs: at most [`MAX_MODULES`], each with valid arguments and path.
pub fn validate_specs(specs: &[ModuleSpec]) -> Result<(), ModuleSpecError> {
    if specs.len() > MAX_MODULES {
        return Err(ModuleSpecError::TooMany { count: specs.len() });
    }
    for s in specs {
        s.validate_args()?;
        s.validate_path()?;
    }
    Ok(())
}

/// A module ready to ship into the guest image: built (if it was a source directory) and
/// checked against the guest kernel.
#[derive(Debug, Clone)]
pub struct BuiltModule {
    /// The module's name (`modinfo -F name`, else the file name without `.ko`).
    pub name: String,
    /// The `.ko` on the host.
    pub ko: PathBuf,
    /// sha256 of the `.ko`, hex.
    pub sha256: String,
    /// `insmod` arguments.
    pub args: Vec<String>,
}

/// What the image, `run-info.json` and the report record of a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRecord {
    /// Module name.
    pub name: String,
    /// sha256 of the `.ko`, hex.
    pub sha256: String,
    /// `insmod` arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

impl BuiltModule {
    /// Its record.
    pub fn record(&self) -> ModuleRecord {
        ModuleRecord {
            name: self.name.clone(),
            sha256: self.sha256.clone(),
            args: self.args.clone(),
        }
    }
}

/// Prepare every spec for `kernel` (module sources built against its kbuild directory);
/// names must be unique and not the mutant's.
pub fn prepare_modules(
    specs: &[ModuleSpec],
    kernel: &GuestKernel,
    cache: &Path,
) -> Result<Vec<BuiltModule>, ImageError> {
    let mut out: Vec<BuiltModule> = Vec::new();
    for spec in specs {
        let m = prepare(spec, kernel, cache)?;
        if out.iter().any(|o| o.name == m.name) || m.name == "powercut_mutant" {
            return Err(ImageError::ModuleUnfit {
                path: spec.path.clone(),
                why: format!(
                    "module name `{}` is already taken (by another --module, or the mutant module)",
                    m.name
                ),
            });
        }
        out.push(m);
    }
    Ok(out)
}

/// Build (a source directory) or take (a `.ko`) one module for `kernel`, and check
/// that it was built for that kernel.
pub fn prepare(
    spec: &ModuleSpec,
    kernel: &GuestKernel,
    cache: &Path,
) -> Result<BuiltModule, ImageError> {
    let kver = kernel.version.as_str();
    let ko = if spec.path.is_dir() {
        build_source_dir(&spec.path, kernel, cache)?
    } else {
        spec.path.clone()
    };
    let unfit = |why: String| ImageError::ModuleUnfit {
        path: spec.path.clone(),
        why,
    };
    let bytes = crate::input::read(&ko, MAX_KO_BYTES, ".ko").map_err(|e| unfit(e.to_string()))?;
    let vermagic = modinfo(&ko, "vermagic")?;
    match vermagic.split_whitespace().next() {
        Some(v) if v == kver => {}
        Some(v) => {
            return Err(unfit(format!(
                "built for kernel {v}, the guest kernel is {kver}: rebuild it against that kernel (or give its source directory)"
            )))
        }
        None => return Err(unfit("has no vermagic: not a kernel module".into())),
    }
    let name = match modinfo(&ko, "name")?.trim() {
        "" => module_file_name(&ko),
        n => n.to_owned(),
    };
    // The name is data read out of the file: it becomes a file name in the image and a
    // word on the guest's command line only once it is a plain module name.
    if !is_module_name(&name) {
        return Err(unfit(format!(
            "its module name `{}` is not a module name (1 to {MAX_NAME_LEN} letters, digits, \
             `_` or `-`)",
            name.escape_debug()
        )));
    }
    Ok(BuiltModule {
        name,
        sha256: hex::encode(Sha256::digest(&bytes)),
        ko,
        args: spec.args.clone(),
    })
}

/// Longest module name (the kernel's `MODULE_NAME_LEN` is 56 with its NUL).
pub const MAX_NAME_LEN: usize = 55;

/// Is `name` a module name: 1 to [`MAX_NAME_LEN`] of `[A-Za-z0-9_-]`? Nothing else is taken
/// from a `.ko` (it would name a file on the host and a word in the guest's shell).
pub fn is_module_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The module name the kernel derives from a file name: no `.ko`, `-` read as `_`.
fn module_file_name(ko: &Path) -> String {
    ko.file_stem()
        .map(|s| s.to_string_lossy().replace('-', "_"))
        .unwrap_or_default()
}

/// One `modinfo -F field` of a `.ko` file.
fn modinfo(ko: &Path, field: &str) -> Result<String, ImageError> {
    let mut cmd = Command::new("modinfo");
    cmd.args(["-F", field]).arg(ko);
    crate::host::process::die_with_parent(&mut cmd);
    let out = cmd.output().map_err(|e| ImageError::Tool {
        tool: "modinfo (install kmod with ci/setup)".into(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(ImageError::ModuleUnfit {
            path: ko.to_owned(),
            why: format!(
                "modinfo cannot read it: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Build a kbuild source directory against the kernel's kbuild directory into the cache
/// (once per source hash and kernel build): its files are copied into the build directory
/// (kbuild writes into `M=`), then `make -C <kbuild dir> M=<build dir> modules`. It must
/// produce exactly one `.ko`.
pub fn build_source_dir(
    src: &Path,
    kernel: &GuestKernel,
    cache: &Path,
) -> Result<PathBuf, ImageError> {
    let kver = kernel.version.as_str();
    let Some(kdir) = kernel.kbuild_dir.as_deref() else {
        return Err(ImageError::ModuleUnfit {
            path: src.to_owned(),
            why: format!(
                "kernel {kver} has no kbuild directory (linux-headers-{kver}, or a build tree \
                 with Module.symvers) to build module sources against"
            ),
        });
    };
    let mut files = Vec::new();
    source_files(src, src, &mut files)?;
    files.sort();
    let mut h = Sha256::new();
    let mut total = 0u64;
    for rel in &files {
        let p = src.join(rel);
        let bytes = std::fs::read(&p).map_err(|e| ImageError::io(&p, e))?;
        total += bytes.len() as u64;
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0u8]);
        h.update(Sha256::digest(&bytes));
    }
    if files.len() > MAX_SOURCE_FILES || total > MAX_SOURCE_BYTES {
        return Err(ImageError::ModuleUnfit {
            path: src.to_owned(),
            why: format!(
                "{} files, {total} bytes: more than {MAX_SOURCE_FILES} files or {MAX_SOURCE_BYTES} bytes",
                files.len()
            ),
        });
    }
    // Keyed by the kernel's build too: two trees of one release are two kernels.
    h.update(kernel.id.as_bytes());
    h.update(kdir.to_string_lossy().as_bytes());
    let out = cache
        .join("build")
        .join(format!("module-{kver}-{}", hex::encode(&h.finalize()[..8])));
    if let Some(ko) = single_ko(&out) {
        return Ok(ko);
    }
    // Removed again unless the build succeeds: a failed copy or `make` leaves nothing.
    let staging = Staging::new(out)?;
    for rel in &files {
        let dest = staging.path().join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ImageError::io(parent, e))?;
        }
        std::fs::copy(src.join(rel), &dest).map_err(|e| ImageError::io(&dest, e))?;
    }
    super::kernel::run(
        Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(kdir)
            .arg(format!("M={}", staging.path().display()))
            .arg("modules"),
        &format!("make (module source {})", src.display()),
    )
    .map_err(|e| ImageError::ModuleUnfit {
        path: src.to_owned(),
        why: format!("does not build against kernel {kver}: {e}"),
    })?;
    let ko = single_ko(staging.path()).ok_or_else(|| ImageError::ModuleUnfit {
        path: src.to_owned(),
        why: format!(
            "the build in {} did not produce exactly one .ko (give one module per source directory)",
            staging.path().display()
        ),
    })?;
    staging.keep();
    Ok(ko)
}

/// The one `.ko` at the top of `dir`, if there is exactly one.
fn single_ko(dir: &Path) -> Option<PathBuf> {
    let kos: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ko"))
        .collect();
    match kos.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Regular files under `dir` (relative to `root`), symlinks and build outputs skipped.
fn source_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImageError> {
    for e in std::fs::read_dir(dir).map_err(|e| ImageError::io(dir, e))? {
        let e = e.map_err(|e| ImageError::io(dir, e))?;
        let ty = e
            .file_type()
            .map_err(|err| ImageError::io(&e.path(), err))?;
        let p = e.path();
        if out.len() > MAX_SOURCE_FILES {
            return Ok(());
        }
        if ty.is_dir() {
            source_files(root, &p, out)?;
        } else if ty.is_file() && !is_build_output(&p) {
            if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_owned());
            }
        }
    }
    Ok(())
}

/// Files kbuild writes into a source directory built in place (`make M=.`).
fn is_build_output(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.starts_with('.')
        || [".o", ".ko", ".mod", ".mod.c", ".order", ".symvers"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// The guest command that loads `m` from the image (`insmod`), printing the kernel log
/// lines it caused when it fails.
/// Every word is quoted, the module's path too (its name was checked when it was built,
/// and a record read back from an image is quoted all the same).
pub fn load_command(m: &ModuleRecord) -> String {
    let args: Vec<String> = m.args.iter().map(|a| crate::host::shell_quote(a)).collect();
    format!(
        "n=$(dmesg | wc -l); insmod {} {} 2>&1; rc=$?; \
         if [ $rc -ne 0 ]; then echo '--- dmesg ---'; dmesg | tail -n +$((n+1)) | tail -n 20; fi; exit $rc",
        crate::host::shell_quote(&guest_path(&m.name)),
        args.join(" ")
    )
}

/// Where module `name` lives in the guest image (relative to `/`, as the image tree
/// writes it): [`GUEST_DIR`]`/<name>.ko`, the name a checked module name.
pub fn guest_file(name: &str) -> String {
    format!("{GUEST_DIR}/{name}.ko")
}

/// The module's absolute path in the guest.
fn guest_path(name: &str) -> String {
    format!("/{}", guest_file(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_module_is_a_path_then_insmod_arguments() {
        let spec: ModuleSpec = "fi/my_fi.ko rate=10 verbose".parse().expect("valid");

        assert_eq!(spec.path, PathBuf::from("fi/my_fi.ko"));
        assert_eq!(spec.args, ["rate=10", "verbose"]);
    }

    #[test]
    fn arguments_the_guest_shell_could_misread_are_refused() {
        let bad = [
            "m.ko a=$(reboot)",
            "m.ko a=`x`",
            "m.ko a='x'",
            "m.ko ;reboot",
            "m.ko =5",
            "m.ko a=b\\c",
        ];

        let results: Vec<_> = bad.iter().map(|s| s.parse::<ModuleSpec>()).collect();

        for (s, r) in bad.iter().zip(&results) {
            assert!(
                matches!(r, Err(ModuleSpecError::BadArg { .. })),
                "{s}: {r:?}"
            );
        }
    }

    #[test]
    fn empty_and_overlong_specs_are_refused() {
        let long = format!("m.ko {}", "a=b ".repeat(400));

        assert_eq!("  ".parse::<ModuleSpec>(), Err(ModuleSpecError::Empty));
        assert!(matches!(
            long.parse::<ModuleSpec>(),
            Err(ModuleSpecError::ArgsTooLong { .. })
        ));
    }

    #[test]
    fn a_path_must_be_an_elf_ko_or_a_kbuild_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = dir.path().join("x.ko");
        std::fs::write(&text, "not elf").expect("write");
        let no_kbuild = dir.path().join("src");
        std::fs::create_dir(&no_kbuild).expect("mkdir");
        let spec = |p: &Path| ModuleSpec {
            path: p.to_owned(),
            args: vec![],
        };

        let errors: Vec<String> = [text.as_path(), &no_kbuild, &dir.path().join("gone.ko")]
            .iter()
            .map(|p| spec(p).validate_path().expect_err("bad").to_string())
            .collect();
        std::fs::write(no_kbuild.join("Kbuild"), "obj-m := m.o\n").expect("write");

        assert!(errors[0].contains("not an ELF file"), "{}", errors[0]);
        assert!(errors[1].contains("needs a Kbuild file"), "{}", errors[1]);
        assert!(errors[2].contains("gone.ko"), "{}", errors[2]);
        assert_eq!(spec(&no_kbuild).validate_path(), Ok(()));
    }

    #[test]
    fn the_load_command_quotes_arguments_and_shows_dmesg_on_failure() {
        let m = ModuleRecord {
            name: "my_fi".into(),
            sha256: "00".into(),
            args: vec!["rate=10".into()],
        };

        let cmd = load_command(&m);

        assert!(
            cmd.contains("insmod /lib/modules/user/my_fi.ko rate=10 2>&1"),
            "{cmd}"
        );
        assert!(cmd.contains("--- dmesg ---"), "{cmd}");
    }

    #[test]
    fn only_plain_module_names_are_taken() {
        let bad = [
            "",
            "../../etc/x",
            "x;reboot -f",
            "a b",
            "a/b",
            "ä",
            &"a".repeat(56),
        ];
        let good = ["my_fi", "pc-test", &"a".repeat(55)];

        for n in bad {
            assert!(!is_module_name(n), "{n:?}");
        }
        for n in good {
            assert!(is_module_name(n), "{n:?}");
        }
    }

    #[test]
    fn the_load_command_quotes_the_module_path() {
        let m = ModuleRecord {
            name: "x;reboot -f".into(),
            sha256: "00".into(),
            args: vec![],
        };

        let cmd = load_command(&m);

        assert!(
            cmd.contains("insmod '/lib/modules/user/x;reboot -f.ko'"),
            "{cmd}"
        );
    }

    #[test]
    fn module_names_come_from_the_file_name_with_underscores() {
        assert_eq!(module_file_name(Path::new("/x/my-fi.ko")), "my_fi");
    }
}
