//! What a patch changes, from `git diff -U0` text: the files with their hunks
//! ([`parse`]), and the functions of a file whose lines a hunk touches
//! ([`changed_functions`], by the definitions of [`super::csource`] in the file's new
//! text). The diff is data: its size, its number of files and hunks and its paths are
//! bounded and checked; a path that is not plain relative (absolute, `..`, quoted by git
//! for unusual bytes) is left out with a note. Pure.

use std::collections::BTreeSet;

use super::csource::definition_spans;

/// Most files of a diff taken.
pub const MAX_FILES: usize = 20_000;
/// Most hunks of a diff taken (over all files).
pub const MAX_HUNKS: usize = 500_000;
/// Longest path taken.
const MAX_PATH: usize = 4096;

/// One hunk's place in the new file: `new_len` lines from `new_start` (1-based); with
/// `new_len` 0 (lines only removed), the removal is after line `new_start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hunk {
    /// First line in the new file (the line before a pure removal).
    pub new_start: usize,
    /// Lines in the new file.
    pub new_len: usize,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    /// Path relative to the tree (the new name; the old one for a deleted file).
    pub path: String,
    /// The file is gone in the new tree.
    pub deleted: bool,
    /// Its hunks.
    pub hunks: Vec<Hunk>,
}

/// A diff's files, and what was left out of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Changed files, in diff order.
    pub files: Vec<FileDiff>,
    /// What was left out, and why.
    pub notes: Vec<String>,
}

/// A diff that is not `git diff` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the diff: {why}")]
pub struct PatchError {
    /// 1-based line of the diff.
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

/// Parse `git diff` text (any context; `-U0` is what powercut asks for).
pub fn parse(text: &str) -> Result<Diff, PatchError> {
    let mut diff = Diff::default();
    let mut hunks = 0usize;
    // Lines of the current hunk still to come (old, new): their bodies are skipped.
    let mut body = (0usize, 0usize);
    let mut current: Option<FileDiff> = None;
    for (i, line) in text.lines().enumerate() {
        let err = |why: String| PatchError { line: i + 1, why };
        if body != (0, 0) {
            match line.as_bytes().first() {
                Some(b'-') => body.0 = body.0.saturating_sub(1),
                Some(b'+') => body.1 = body.1.saturating_sub(1),
                Some(b' ') | None => {
                    body.0 = body.0.saturating_sub(1);
                    body.1 = body.1.saturating_sub(1);
                }
                Some(b'\\') => {}
                _ => return Err(err("a hunk ends before its line counts say".into())),
            }
            continue;
        }
        if line.starts_with("diff --git ") {
            diff.files
                .extend(current.take().filter(|f| !f.path.is_empty()));
            if diff.files.len() >= MAX_FILES {
                return Err(err(format!("more than {MAX_FILES} files")));
            }
            current = Some(FileDiff {
                path: String::new(),
                deleted: false,
                hunks: Vec::new(),
            });
        } else if let Some(rest) = line.strip_prefix("--- ") {
            let f = current
                .as_mut()
                .ok_or_else(|| err("`---` before `diff --git`".into()))?;
            if let Some(p) = rest.strip_prefix("a/") {
                f.path = p.to_owned();
            }
        } else if let Some(rest) = line.strip_prefix("+++ ") {
            let f = current
                .as_mut()
                .ok_or_else(|| err("`+++` before `diff --git`".into()))?;
            if rest == "/dev/null" {
                f.deleted = true;
            } else if let Some(p) = rest.strip_prefix("b/") {
                f.path = p.to_owned();
            } else {
                diff.notes.push(format!(
                    "left out: `{}` (a path git quoted or wrote without the b/ prefix)",
                    shorten(rest)
                ));
                current = None;
                continue;
            }
            if let Some(why) = bad_path(&f.path) {
                diff.notes
                    .push(format!("left out: `{}` ({why})", shorten(&f.path)));
                current = None;
            }
        } else if line.starts_with("@@ ") {
            let Some(f) = current.as_mut() else {
                continue; // the hunks of a file left out
            };
            let (old, new) = hunk_header(line).ok_or_else(|| err("not a hunk header".into()))?;
            hunks += 1;
            if hunks > MAX_HUNKS {
                return Err(err(format!("more than {MAX_HUNKS} hunks")));
            }
            f.hunks.push(new);
            body = (old.new_len, new.new_len);
        }
    }
    if body != (0, 0) {
        return Err(PatchError {
            line: text.lines().count(),
            why: "the diff ends inside a hunk".into(),
        });
    }
    diff.files.extend(current.filter(|f| !f.path.is_empty()));
    Ok(diff)
}

/// `@@ -a[,b] +c[,d] @@ ...` as the old and the new side.
fn hunk_header(line: &str) -> Option<(Hunk, Hunk)> {
    let mut parts = line.split(' ');
    let (_, old, new, end) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if end != "@@" {
        return None;
    }
    let side = |s: &str, sign: char| -> Option<Hunk> {
        let s = s.strip_prefix(sign)?;
        let (start, len) = match s.split_once(',') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => (s.parse().ok()?, 1),
        };
        Some(Hunk {
            new_start: start,
            new_len: len,
        })
    };
    Some((side(old, '-')?, side(new, '+')?))
}

/// Why `path` is not taken, if it is not: it must be relative, of plain components.
fn bad_path(path: &str) -> Option<&'static str> {
    if path.len() > MAX_PATH {
        return Some("path too long");
    }
    if path.starts_with('/') {
        return Some("absolute path");
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Some("a path component that is empty, `.` or `..`");
    }
    if path.chars().any(char::is_control) {
        return Some("a control character in the path");
    }
    None
}

fn shorten(s: &str) -> String {
    let t: String = s.chars().take(120).collect();
    t.escape_debug().to_string()
}

/// The functions of `new_text` (the file's text after the patch) whose lines `file`'s hunks
/// touch, in order, each once. A pure removal touches a function when the lines on both
/// sides of it are in that function.
pub fn changed_functions(file: &FileDiff, new_text: &str) -> Vec<String> {
    let spans = definition_spans(new_text);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for span in &spans {
        let touched = file.hunks.iter().any(|h| {
            if h.new_len == 0 {
                span.holds(h.new_start) && span.holds(h.new_start + 1)
            } else {
                let last = h.new_start + h.new_len - 1;
                h.new_start <= span.last && span.first <= last
            }
        });
        if touched && seen.insert(span.name.clone()) {
            out.push(span.name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "\
diff --git a/fs/dax.c b/fs/dax.c
index 1111111..2222222 100644
--- a/fs/dax.c
+++ b/fs/dax.c
@@ -7 +7 @@ static int a(int x)
-\treturn x;
+\treturn x + 1;
@@ -20,2 +19,0 @@ int b(void)
-\tfoo();
-\tbar();
diff --git a/fs/old.c b/fs/old.c
deleted file mode 100644
--- a/fs/old.c
+++ /dev/null
@@ -1,2 +0,0 @@
-int x;
-int y;
diff --git a/Documentation/x.png b/Documentation/x.png
Binary files a/Documentation/x.png and b/Documentation/x.png differ
";

    #[test]
    fn files_and_hunks_are_read_from_git_diff() {
        let d = parse(DIFF).expect("diff");

        assert_eq!(d.files.len(), 2, "{d:?}");
        assert_eq!(d.files[0].path, "fs/dax.c");
        assert_eq!(
            d.files[0].hunks,
            [
                Hunk {
                    new_start: 7,
                    new_len: 1
                },
                Hunk {
                    new_start: 19,
                    new_len: 0
                }
            ]
        );
        assert!(d.files[1].deleted && d.files[1].path == "fs/old.c");
    }

    #[test]
    fn changed_lines_and_removals_name_their_functions() {
        // Lines 1-4: a (sig 1, `{` 2, body 3, `}` 4); 6-10: b; 12-15: c.
        let text = "\
static int a(int x)
{
\treturn x + 1;
}

int b(void)
{
\tbaz();
\tqux();
}

void c(void)
{
\treturn;
}
";
        let file = |hunks: &[(usize, usize)]| FileDiff {
            path: "f.c".into(),
            deleted: false,
            hunks: hunks
                .iter()
                .map(|&(new_start, new_len)| Hunk { new_start, new_len })
                .collect(),
        };

        assert_eq!(changed_functions(&file(&[(3, 1)]), text), ["a"]);
        // Removed after line 8 (inside b); after line 10 (b's `}`): between b and c.
        assert_eq!(changed_functions(&file(&[(8, 0)]), text), ["b"]);
        assert!(changed_functions(&file(&[(10, 0)]), text).is_empty());
        // A hunk over the blank line between b and c touches both.
        assert_eq!(changed_functions(&file(&[(10, 3)]), text), ["b", "c"]);
        // The signature is part of the function; the same function twice is named once.
        assert_eq!(changed_functions(&file(&[(12, 1), (14, 1)]), text), ["c"]);
    }

    #[test]
    fn hostile_paths_are_left_out_with_a_note() {
        for path in ["/etc/passwd", "../x.c", "a/../../x.c", "a//b.c"] {
            let text = format!(
                "diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-a\n+b\n"
            );
            let d = parse(&text).expect("diff");
            assert!(d.files.is_empty(), "{path}: {d:?}");
            assert_eq!(d.notes.len(), 1, "{path}");
        }
        let quoted = "diff --git \"a/x\\ty.c\" \"b/x\\ty.c\"\n--- \"a/x\\ty.c\"\n+++ \"b/x\\ty.c\"\n@@ -1 +1 @@\n-a\n+b\n";
        let d = parse(quoted).expect("diff");
        assert!(d.files.is_empty() && d.notes.len() == 1, "{d:?}");
    }

    #[test]
    fn a_broken_diff_is_an_error_naming_the_line() {
        let e = parse("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n-a\n").unwrap_err();
        assert!(e.why.contains("ends inside a hunk"), "{e}");
        let e = parse("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @\n").unwrap_err();
        assert_eq!(e.line, 4);
        let e = parse("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1 @@\n-a\nZ\n").unwrap_err();
        assert_eq!(e.line, 6);
    }
}
