//! The floors of `harness/src`, kept: every top-level module imports only modules on lower
//! floors (read from the `crate::` paths of its non-test code), so there is no import
//! circle; `process::exit` appears only in `main.rs` and `signals.rs`; no function of
//! `cli/` is longer than 80 lines. The floor table is `docs/architecture.md`'s.
//!
//! The checks are text, not a compiler: a `crate::x` path anywhere in a module's code (a
//! `use`, a full path in an expression, a doc link) counts as an import of `x`. Test code
//! (after `#[cfg(test)]`, and `tests.rs` / `*_tests.rs` files) does not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of `harness/src` and its floor: a module may import only modules
/// on lower floors. Keep in step with the floor table of `docs/architecture.md`.
const FLOORS: &[(&str, u32)] = &[
    ("host", 0),
    ("cache_dir", 0),
    ("cache_model", 0),
    ("exit", 0),
    ("input", 0),
    ("records", 1),
    ("coverage", 1),
    ("vm", 1),
    ("image", 2),
    ("guided", 2),
    ("checker", 3),
    ("config", 3),
    ("trial", 4),
    ("journal", 4),
    ("rundir", 5),
    ("ui", 5),
    ("runs", 6),
    ("triage", 6),
    ("report", 7),
    ("prepare", 7),
    ("campaign", 8),
    ("error", 9),
    ("signals", 9),
    ("cli", 10),
    ("test_support", 10),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A test file (`tests.rs`, `*_tests.rs`)?
fn is_test_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests.rs" || name.ends_with("_tests.rs")
}

/// The code of a file before its `#[cfg(test)]`, without `//` comment lines.
fn non_test_code(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a file under `root` belongs to (`None` for `main.rs`, `lib.rs`).
fn top_module(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    match first.as_str() {
        "main.rs" | "lib.rs" => None,
        f => Some(f.strip_suffix(".rs").unwrap_or(f).to_owned()),
    }
}

/// The modules named by `crate::<name>` paths in `code`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `powercut_crate::…` or similar: not this crate
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

/// Every import edge between top-level modules of the crate at `root`, with the files
/// that make it: `(from, to) → files`.
fn edges(root: &Path) -> BTreeMap<(String, String), BTreeSet<String>> {
    let tops: BTreeSet<String> = std::fs::read_dir(root)
        .expect("src")
        .flatten()
        .filter_map(|e| top_module(root, &e.path()))
        .collect();
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for f in rust_files(root) {
        let Some(top) = top_module(root, &f) else {
            continue;
        };
        if is_test_file(&f) {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        for m in crate_paths(&non_test_code(&text)) {
            if m != top && tops.contains(&m) {
                let rel = f.strip_prefix(root).unwrap_or(&f).display().to_string();
                out.entry((top.clone(), m)).or_default().insert(rel);
            }
        }
    }
    out
}

/// The import circles (strongly connected components of more than one module), each sorted.
fn circles(edges: &BTreeMap<(String, String), BTreeSet<String>>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = edges.keys().flat_map(|(a, b)| [a, b]).collect();
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for (a, b) in edges.keys() {
                if *a == n && seen.insert(b.clone()) {
                    stack.push(b.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for n in &nodes {
        let mut circle: Vec<String> = nodes
            .iter()
            .filter(|m| reachable[*n].contains(**m) && reachable[*m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        circle.sort();
        if circle.len() > 1 && !out.contains(&circle) {
            out.push(circle);
        }
    }
    out
}

/// Every circle, with the files closing it, as text (empty: none).
fn describe_circles(edges: &BTreeMap<(String, String), BTreeSet<String>>) -> String {
    let mut s = String::new();
    for c in circles(edges) {
        s.push_str(&format!("import circle: {}\n", c.join(" ")));
        for ((a, b), files) in edges {
            if c.contains(a) && c.contains(b) {
                let files: Vec<&str> = files.iter().map(String::as_str).collect();
                s.push_str(&format!("  {a} -> {b}: {}\n", files.join(", ")));
            }
        }
    }
    s
}

/// Every import that does not go down a floor, as text (empty: none).
fn describe_upward(edges: &BTreeMap<(String, String), BTreeSet<String>>) -> String {
    let floor: BTreeMap<&str, u32> = FLOORS.iter().copied().collect();
    let mut s = String::new();
    for ((a, b), files) in edges {
        let (fa, fb) = (floor.get(a.as_str()), floor.get(b.as_str()));
        match (fa, fb) {
            (Some(fa), Some(fb)) if fb < fa => {}
            _ => {
                let files: Vec<&str> = files.iter().map(String::as_str).collect();
                s.push_str(&format!(
                    "{a} (floor {fa:?}) imports {b} (floor {fb:?}): {}\n",
                    files.join(", ")
                ));
            }
        }
    }
    s
}

#[test]
fn no_import_circle_between_top_level_modules() {
    let e = edges(&src());

    let circles = describe_circles(&e);

    assert!(circles.is_empty(), "{circles}");
}

#[test]
fn every_module_imports_only_lower_floors() {
    let root = src();
    let tops: BTreeSet<String> = std::fs::read_dir(&root)
        .expect("src")
        .flatten()
        .filter_map(|e| top_module(&root, &e.path()))
        .collect();
    let listed: BTreeSet<String> = FLOORS.iter().map(|(m, _)| (*m).to_owned()).collect();

    let upward = describe_upward(&edges(&root));

    assert_eq!(tops, listed, "every top-level module has a floor in FLOORS");
    assert!(upward.is_empty(), "{upward}");
}

#[test]
fn the_run_directory_imports_nothing_of_the_engine() {
    let e = edges(&src());

    let bad: Vec<String> = ["campaign", "trial", "checker"]
        .iter()
        .filter(|m| e.contains_key(&("rundir".to_owned(), (**m).to_owned())))
        .map(|m| (*m).to_owned())
        .collect();

    assert!(bad.is_empty(), "rundir imports {bad:?}");
}

#[test]
fn process_exit_only_in_main_and_signals() {
    let root = src();
    let allowed = [root.join("main.rs"), root.join("signals.rs")];

    let offenders: Vec<String> = rust_files(&root)
        .into_iter()
        .filter(|f| !allowed.contains(f))
        .filter(|f| {
            let text = std::fs::read_to_string(f).expect("read");
            non_test_code(&text).contains("process::exit")
        })
        .map(|f| f.display().to_string())
        .collect();

    assert!(offenders.is_empty(), "process::exit in {offenders:?}");
}

/// The functions of `text` longer than `max` lines: (name, first line, length).
fn long_functions(text: &str, max: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let t = t.strip_prefix("pub(crate) ").unwrap_or(t);
        let t = t.strip_prefix("pub(super) ").unwrap_or(t);
        let t = t.strip_prefix("pub ").unwrap_or(t);
        let Some(rest) = t.strip_prefix("fn ") else {
            continue;
        };
        if l.trim_end().ends_with(';') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let (mut depth, mut opened) = (0i64, false);
        for (j, body) in lines.iter().enumerate().skip(i) {
            let opens = body.matches('{').count() as i64;
            depth += opens - body.matches('}').count() as i64;
            opened |= opens > 0;
            if opened && depth <= 0 {
                let len = j - i + 1;
                if len > max {
                    out.push((name.clone(), i + 1, len));
                }
                break;
            }
        }
    }
    out
}

#[test]
fn command_line_functions_are_short() {
    let cli = src().join("cli");

    let long: Vec<String> = rust_files(&cli)
        .into_iter()
        .filter(|f| !is_test_file(f))
        .flat_map(|f| {
            let text = std::fs::read_to_string(&f).expect("read");
            long_functions(&non_test_code(&text), 80)
                .into_iter()
                .map(move |(n, line, len)| format!("{}:{line} {n}: {len} lines", f.display()))
        })
        .collect();

    assert!(long.is_empty(), "{long:?}");
}

/// A crate tree written into a temporary directory: (file, text).
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    dir
}

#[test]
fn a_circle_is_found_and_named_with_the_file_closing_it() {
    let t = tree(&[
        ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        ("a/mod.rs", "use crate::b::X;\n"),
        ("b/mod.rs", "pub struct X;\n"),
        (
            "b/back.rs",
            "// crate::c in a comment does not count\nuse crate::a;\n",
        ),
        ("c.rs", "#[cfg(test)]\nmod tests { use crate::a; }\n"),
    ]);

    let e = edges(t.path());
    let text = describe_circles(&e);

    assert_eq!(circles(&e), vec![vec!["a".to_owned(), "b".to_owned()]]);
    assert!(text.contains("b -> a: b/back.rs"), "{text}");
    assert!(!e.contains_key(&("b".to_owned(), "c".to_owned())));
    assert!(!e.contains_key(&("c".to_owned(), "a".to_owned())));
}

#[test]
fn an_import_of_a_higher_floor_is_named() {
    let t = tree(&[
        ("lib.rs", "pub mod host;\npub mod vm;\n"),
        ("host/mod.rs", "use crate::vm::Vm;\n"),
        ("vm/mod.rs", "pub struct Vm;\n"),
    ]);

    let upward = describe_upward(&edges(t.path()));

    assert!(
        upward.contains("host (floor Some(0)) imports vm (floor Some(1)): host/mod.rs"),
        "{upward}"
    );
}

#[test]
fn a_long_function_is_found() {
    let body = "    let x = 1;\n".repeat(81);
    let text = format!("pub fn short() {{\n}}\n\npub(crate) fn long() {{\n{body}}}\n");

    let long = long_functions(&text, 80);

    assert_eq!(long, vec![("long".to_owned(), 4, 83)]);
}
