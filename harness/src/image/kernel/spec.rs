//! `--kernel SPEC`: which kernel to test, as the user wrote it. Parsing is pure; what a path
//! holds (a package, a build tree, a bzImage) is found when it is resolved.
//!
//! Grammar: comma-separated items. `modules=DIR` names an installed module tree (for a
//! bzImage, or a build tree whose modules the user installed); the other items are the
//! kernel: several `.deb` files, or one path, or one release string of a cached kernel
//! (it starts with a digit: `6.1.0-50-amd64`), or `suite:NAME` (the newest kernel
//! `ci/setup --kernels NAME` cached from that Debian suite, so a config keeps working when
//! Debian moves the suite to a new point release), or `default` (the newest package in
//! `<cache>/kernel/`). A relative path that starts with a digit is written `./NAME`.

use std::fmt;
use std::path::PathBuf;

/// Where the kernel comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KernelSource {
    /// The newest classic `linux-image-*.deb` directly in `<cache>/kernel/` (`ci/setup`).
    #[default]
    Default,
    /// A kernel cached by `ci/setup --kernels`, by its release (`6.1.0-50-amd64`).
    Release(String),
    /// The newest kernel cached from a Debian suite (`suite:sid`).
    Suite(String),
    /// One path: a `.deb`, a directory of `.deb` files, a kernel build tree or a bzImage.
    Path(PathBuf),
    /// Several `.deb` files of one kernel (the split layout: linux-binary + linux-modules).
    Debs(Vec<PathBuf>),
}

/// A parsed `--kernel` value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KernelSpec {
    /// The kernel.
    pub source: KernelSource,
    /// An installed module tree (`lib/modules/<release>`, or a directory holding it).
    pub modules: Option<PathBuf>,
}

/// A `--kernel` value that is not a kernel spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--kernel `{spec}`: {why}")]
pub struct KernelSpecError {
    /// The value given.
    pub spec: String,
    /// What is wrong with it.
    pub why: String,
}

/// Longest spec accepted (paths included).
const MAX_SPEC_LEN: usize = 8192;
/// The word for [`KernelSource::Default`].
const DEFAULT_WORD: &str = "default";

impl KernelSpec {
    /// Parse a spec (see the module documentation for the grammar).
    pub fn parse(text: &str) -> Result<KernelSpec, KernelSpecError> {
        let err = |why: &str| KernelSpecError {
            spec: text.chars().take(200).collect(),
            why: why.to_owned(),
        };
        if text.len() > MAX_SPEC_LEN {
            return Err(err("longer than 8192 bytes"));
        }
        let mut modules = None;
        let mut kernel = Vec::new();
        for item in text.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(err(
                    "empty item: give a .deb, a directory, a build tree, a bzImage or a \
                     cached release (`powercut kernel list`)",
                ));
            }
            if item.contains('\0') {
                return Err(err("contains a NUL byte"));
            }
            if let Some(dir) = item.strip_prefix("modules=") {
                if dir.is_empty() || modules.is_some() {
                    return Err(err("give `modules=DIR` once, with a directory"));
                }
                modules = Some(PathBuf::from(dir));
            } else {
                kernel.push(item);
            }
        }
        let source = match kernel.as_slice() {
            [] => {
                return Err(err(
                    "`modules=DIR` needs a kernel (a bzImage or a build tree)",
                ))
            }
            [one] if *one == DEFAULT_WORD => KernelSource::Default,
            [one] if looks_like_release(one) => KernelSource::Release((*one).to_owned()),
            [one] if one.starts_with(SUITE_PREFIX) => {
                let name = &one[SUITE_PREFIX.len()..];
                if !is_suite_name(name) {
                    return Err(err(
                        "`suite:NAME` needs a Debian suite name (lower-case letters, digits \
                         and `-`, e.g. suite:sid)",
                    ));
                }
                KernelSource::Suite(name.to_owned())
            }
            [one] => KernelSource::Path(PathBuf::from(one)),
            several => {
                if let Some(bad) = several.iter().find(|p| !p.ends_with(".deb")) {
                    return Err(err(&format!(
                        "`{bad}`: only .deb files of one kernel can be listed together"
                    )));
                }
                KernelSource::Debs(several.iter().map(PathBuf::from).collect())
            }
        };
        let spec = KernelSpec { source, modules };
        spec.check_modules().map_err(|why| err(&why))?;
        Ok(spec)
    }

    /// The same spec with `modules` (from `--modules DIR`).
    pub fn with_modules(mut self, dir: PathBuf) -> Result<KernelSpec, KernelSpecError> {
        if self.modules.is_some() {
            return Err(KernelSpecError {
                spec: self.to_string(),
                why: "`modules=` is given twice (in the spec and with --modules)".into(),
            });
        }
        self.modules = Some(dir);
        self.check_modules().map_err(|why| KernelSpecError {
            spec: self.to_string(),
            why,
        })?;
        Ok(self)
    }

    fn check_modules(&self) -> Result<(), String> {
        match (&self.source, &self.modules) {
            (KernelSource::Path(_), _) | (_, None) => Ok(()),
            _ => Err(
                "a module directory goes with a bzImage or a build tree, not with packages or \
                 a cached kernel (they bring their modules)"
                    .into(),
            ),
        }
    }
}

/// The prefix of a suite spec (`suite:sid`).
pub const SUITE_PREFIX: &str = "suite:";

/// A Debian suite name as `ci/setup --kernels` takes it: `[a-z0-9-]`, 1..=64 bytes.
pub fn is_suite_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A release string of a cached kernel: starts with a digit, then letters, digits and
/// `.+-_~` only.
fn looks_like_release(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit())
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+-_~".contains(c))
}

impl fmt::Display for KernelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            KernelSource::Default => f.write_str(DEFAULT_WORD)?,
            KernelSource::Release(r) => f.write_str(r)?,
            KernelSource::Suite(n) => write!(f, "{SUITE_PREFIX}{n}")?,
            KernelSource::Path(p) => write!(f, "{}", p.display())?,
            KernelSource::Debs(debs) => {
                let list: Vec<String> = debs.iter().map(|p| p.display().to_string()).collect();
                f.write_str(&list.join(","))?;
            }
        }
        if let Some(m) = &self.modules {
            write!(f, ",modules={}", m.display())?;
        }
        Ok(())
    }
}

impl std::str::FromStr for KernelSpec {
    type Err = KernelSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KernelSpec::parse(s)
    }
}

impl serde::Serialize for KernelSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for KernelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        KernelSpec::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> KernelSource {
        KernelSource::Path(PathBuf::from(p))
    }

    #[test]
    fn each_kind_of_spec_parses() {
        let cases = [
            ("default", KernelSource::Default, None),
            (
                "6.1.0-50-amd64",
                KernelSource::Release("6.1.0-50-amd64".into()),
                None,
            ),
            (
                "7.2.13+deb14-amd64",
                KernelSource::Release("7.2.13+deb14-amd64".into()),
                None,
            ),
            (
                "/k/linux-image-6.1_1_amd64.deb",
                path("/k/linux-image-6.1_1_amd64.deb"),
                None,
            ),
            ("linux", path("linux"), None),
            ("suite:sid", KernelSource::Suite("sid".into()), None),
            (
                "suite:trixie-backports",
                KernelSource::Suite("trixie-backports".into()),
                None,
            ),
            ("./6.13-tree", path("./6.13-tree"), None),
            (
                "a/linux-binary-7.2_1_amd64.deb, a/linux-modules-7.2_1_amd64.deb",
                KernelSource::Debs(vec![
                    "a/linux-binary-7.2_1_amd64.deb".into(),
                    "a/linux-modules-7.2_1_amd64.deb".into(),
                ]),
                None,
            ),
            (
                "~/linux/arch/x86/boot/bzImage,modules=/tmp/m/lib/modules/6.13.0",
                path("~/linux/arch/x86/boot/bzImage"),
                Some(PathBuf::from("/tmp/m/lib/modules/6.13.0")),
            ),
        ];

        for (text, source, modules) in cases {
            let spec = KernelSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(spec, KernelSpec { source, modules }, "{text}");
        }
    }

    #[test]
    fn bad_specs_say_why() {
        let cases = [
            ("", "empty item"),
            ("a.deb,,b.deb", "empty item"),
            ("modules=/m", "needs a kernel"),
            ("bzImage,modules=", "once, with a directory"),
            ("bzImage,modules=/a,modules=/b", "once"),
            ("a.deb,tree", "only .deb files"),
            (
                "6.1.0-50-amd64,modules=/m",
                "not with packages or a cached kernel",
            ),
            ("a.deb,b.deb,modules=/m", "not with packages"),
            ("suite:", "needs a Debian suite name"),
            ("suite:Sid", "needs a Debian suite name"),
            ("suite:../x", "needs a Debian suite name"),
            (
                "suite:sid,modules=/m",
                "not with packages or a cached kernel",
            ),
        ];

        for (text, want) in cases {
            let err = KernelSpec::parse(text).expect_err(text).to_string();
            assert!(err.contains(want), "{text}: {err}");
            assert!(err.starts_with("--kernel `"), "{err}");
        }
    }

    #[test]
    fn display_parses_back_to_the_same_spec() {
        let texts = [
            "default",
            "6.1.0-50-amd64",
            "/x/linux-image.deb",
            "/a.deb,/b.deb",
            "/t/bzImage,modules=/m",
            "suite:bookworm-backports",
        ];

        for text in texts {
            let spec = KernelSpec::parse(text).expect("parses");
            assert_eq!(KernelSpec::parse(&spec.to_string()), Ok(spec), "{text}");
        }
    }

    #[test]
    fn modules_from_the_flag_join_a_path_spec_only() {
        let tree = KernelSpec::parse("/src/linux").expect("parses");
        let cached = KernelSpec::parse("6.1.0-50-amd64").expect("parses");

        let with = tree.with_modules("/m".into()).expect("joins");
        let twice = with.clone().with_modules("/n".into());
        let refused = cached.with_modules("/m".into());

        assert_eq!(with.modules, Some(PathBuf::from("/m")));
        assert!(twice.expect_err("twice").to_string().contains("twice"));
        assert!(refused.is_err());
    }
}
