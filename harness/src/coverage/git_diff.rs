//! The functions a patch changes in a kernel git tree (the I/O side of [`super::patch`]):
//! `git diff -U0 REV` of the tree's `.c` and `.h` files against the working tree (committed
//! or not), each changed file's new text read from the tree, its changed functions found.
//! git runs in the user's tree under a guard with timeouts, its output bounded; the revision
//! is checked before git sees it (never an option), and a changed file is read only if it
//! resolves inside the tree. A kernel tree is trusted as code by design (powercut builds
//! modules in it and boots its kernel): git reads the tree's own config.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::diff::{ChangedFunction, PatchFunctions};
use super::patch::{changed_functions, parse};
use super::CoverageError;

/// Longest revision accepted.
const MAX_REV: usize = 256;
/// Largest diff read.
const MAX_DIFF: u64 = 64 << 20;
/// Largest source file read.
const MAX_SOURCE: u64 = 16 << 20;
/// Most changed functions kept.
const MAX_FUNCTIONS: usize = 5000;
/// Longest `git diff` may run.
const DIFF_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest `git rev-parse` may run.
const REV_TIMEOUT: Duration = Duration::from_secs(60);

/// Is `rev` a revision powercut hands to git? (Not an option, no spaces or control
/// characters, bounded.)
pub fn check_rev(rev: &str) -> Result<(), String> {
    if rev.is_empty() || rev.len() > MAX_REV {
        return Err(format!("a revision of 1 to {MAX_REV} bytes"));
    }
    if rev.starts_with('-') {
        return Err("a revision, not an option (it starts with `-`)".into());
    }
    if rev.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a revision without spaces or control characters".into());
    }
    Ok(())
}

fn git(tree: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(tree)
        .args(["-c", "core.quotePath=true", "-c", "core.fsmonitor=false"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(std::process::Stdio::null());
    c
}

/// The functions `git diff REV` of `tree` changes.
pub fn patch_functions(tree: &Path, rev: &str) -> Result<PatchFunctions, CoverageError> {
    let bad = |why: String| {
        CoverageError::Patch(format!(
            "--coverage-diff {rev} in {}: {why}",
            tree.display()
        ))
    };
    check_rev(rev).map_err(|w| bad(format!("needs {w}")))?;
    if !tree.join(".git").exists() {
        return Err(bad(
            "not a git tree (no .git): the kernel tree must be under git".into(),
        ));
    }
    let root = tree
        .canonicalize()
        .map_err(|e| bad(format!("the tree: {e}")))?;
    let commit = crate::host::command::output(
        git(&root)
            .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{rev}^{{commit}}")),
        "git rev-parse",
        REV_TIMEOUT,
        4096,
    )
    .map_err(|e| bad(format!("no such commit ({e})")))?;
    let commit = String::from_utf8_lossy(&commit).trim().to_owned();
    if commit.len() < 7 || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad(format!(
            "git rev-parse printed `{}`, not a commit",
            commit.escape_debug()
        )));
    }
    let text = crate::host::command::output(
        git(&root)
            .args([
                "diff",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--no-renames",
                "-U0",
                "--src-prefix=a/",
                "--dst-prefix=b/",
                "--end-of-options",
            ])
            .arg(&commit)
            .args(["--", "*.c", "*.h"]),
        "git diff",
        DIFF_TIMEOUT,
        MAX_DIFF,
    )
    .map_err(|e| bad(e.to_string()))?;
    let diff = parse(&String::from_utf8_lossy(&text)).map_err(|e| bad(e.to_string()))?;
    let mut out = PatchFunctions {
        tree: root.display().to_string(),
        rev: rev.to_owned(),
        commit: commit.chars().take(12).collect(),
        notes: diff.notes,
        ..PatchFunctions::default()
    };
    for f in diff.files.iter().filter(|f| !f.deleted) {
        let text = match read_inside(&root, &f.path) {
            Ok(t) => t,
            Err(why) => {
                out.notes.push(format!("left out: {}: {why}", f.path));
                continue;
            }
        };
        let names = changed_functions(f, &text);
        if names.is_empty() {
            out.files_without_functions.push(f.path.clone());
        }
        for name in names {
            if out.functions.len() == MAX_FUNCTIONS {
                out.notes.push(format!(
                    "more than {MAX_FUNCTIONS} changed functions: the rest left out"
                ));
                return Ok(out);
            }
            out.functions.push(ChangedFunction {
                file: f.path.clone(),
                name,
            });
        }
    }
    let deleted: Vec<&str> = diff
        .files
        .iter()
        .filter(|f| f.deleted)
        .map(|f| f.path.as_str())
        .collect();
    if !deleted.is_empty() {
        out.notes.push(format!(
            "deleted files (their functions are gone): {}",
            deleted.join(", ")
        ));
    }
    Ok(out)
}

/// The text of `rel` under `root`, if it resolves inside `root` (a symlink out is refused).
fn read_inside(root: &Path, rel: &str) -> Result<String, String> {
    let p = root.join(rel).canonicalize().map_err(|e| e.to_string())?;
    if !p.starts_with(root) {
        return Err("resolves outside the tree".into());
    }
    crate::input::read_to_string(&p, MAX_SOURCE, "kernel source").map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let st = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .expect("git");
        assert!(
            st.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    }

    #[test]
    fn a_one_line_change_in_a_git_tree_names_its_function() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path();
        std::fs::create_dir_all(d.join("fs")).unwrap();
        let before = "int a(void)\n{\n\treturn 1;\n}\n\nint b(void)\n{\n\treturn 2;\n}\n";
        std::fs::write(d.join("fs/dax.c"), before).unwrap();
        sh(d, &["init", "-q"]);
        sh(d, &["add", "."]);
        sh(d, &["commit", "-q", "-m", "base"]);
        // Uncommitted: a change in b; a symlink out of the tree changed too.
        std::fs::write(d.join("fs/dax.c"), before.replace("return 2", "return 3")).unwrap();

        let p = patch_functions(d, "HEAD").expect("patch");

        assert_eq!(
            p.functions,
            [ChangedFunction {
                file: "fs/dax.c".into(),
                name: "b".into()
            }]
        );
        assert_eq!(p.commit.len(), 12);
        assert!(patch_functions(d, "--output=/tmp/x").is_err());
        assert!(patch_functions(d, "no-such-rev").is_err());
        assert!(patch_functions(&d.join("fs"), "HEAD").is_err());
    }

    #[test]
    fn a_changed_file_that_leads_out_of_the_tree_is_not_read() {
        let t = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("x.c"), "int s(void)\n{\n}\n").unwrap();
        let root = t.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(outside.path().join("x.c"), root.join("x.c")).unwrap();

        let e = read_inside(&root, "x.c").unwrap_err();

        assert!(e.contains("outside"), "{e}");
    }
}
