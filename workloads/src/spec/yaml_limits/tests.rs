//! Tests of the YAML size cap and the nesting pre-scan: what it must count, what it must not
//! count (brackets inside scalars and comments), tricks that would hide nesting from it,
//! and agreement with serde_yaml on generated documents.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

fn depth_error_line(text: &str, max: usize) -> Option<usize> {
    match check_depth(text, max) {
        Ok(()) => None,
        Err(YamlLimitError::TooDeep { line, .. }) => Some(line),
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// The smallest cap `text` passes.
fn depth(text: &str) -> usize {
    (0..=200)
        .find(|&max| check_depth(text, max).is_ok())
        .expect("depth at most 200")
}

fn block_nested(levels: usize) -> String {
    (0..levels)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect()
}

#[test]
fn flow_nesting_is_counted_and_capped() {
    let ok = format!("{}{}", "[".repeat(32), "]".repeat(32));
    let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));

    assert_eq!(depth_error_line(&ok, 32), None);
    assert_eq!(depth_error_line(&deep, 32), Some(1));
    assert_eq!(depth("a: {b: [1, {c: [2]}]}"), 5);
}

#[test]
fn block_nesting_is_counted_and_capped() {
    let ok = block_nested(32);
    let deep = block_nested(33);

    assert_eq!(depth_error_line(&ok, 32), None);
    assert_eq!(depth_error_line(&deep, 32), Some(33));
}

#[test]
fn sequences_count_including_compact_and_indentless_ones() {
    assert_eq!(depth("- - - a\n"), 3);
    assert_eq!(depth("a:\n- b:\n  - c\n"), 4);
    assert_eq!(
        depth("ops:\n  - {op: create, file: f0}\n  - {op: sync}\n"),
        3
    );
    assert_eq!(depth("- key: v\n  other: w\n- x\n"), 2);
}

#[test]
fn siblings_and_dedents_do_not_add_up() {
    let text = "a:\n  b: 1\n  c: 2\nd:\n  e:\n    f: 3\ng: 4\n";

    assert_eq!(depth(text), 3);
    assert_eq!(depth(&"a: 1\n".repeat(1000)), 1);
}

#[test]
fn brackets_inside_scalars_and_comments_open_nothing() {
    let texts = [
        "a: '[[[['\n",
        "a: \"[[[[\\\"[[\"\n",
        "a: x[[[[\n",
        "a: 1 # [[[[\n",
        "# [[[[\n",
        "a: |\n  [[[[\n  {{{{\nb: 1\n",
        "a: >-\n    [[[[\n\n    [[[[\n",
        "a: 'it''s [[[['\n",
        "a: &anchor [1]\nb: *anchor\n",
        "a: !!str '[['\n",
        "[a, 'b]]]]', \"c]]]\"]\n",
    ];
    for text in texts {
        assert!(depth(text) <= 2, "{text:?}: {}", depth(text));
    }
}

#[test]
fn an_apostrophe_in_a_plain_scalar_does_not_hide_what_follows() {
    let text = format!("a: it's\nb: {}\n", "[".repeat(40));

    assert_eq!(depth_error_line(&text, 32), Some(2));
}

#[test]
fn a_comment_line_does_not_close_block_levels() {
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&format!("{}k{i}:\n# comment at column 0\n", " ".repeat(i)));
    }

    assert_eq!(depth_error_line(&text, 32), Some(65));
}

#[test]
fn every_yaml_line_break_ends_a_comment() {
    for brk in ["\r", "\u{85}", "\u{2028}", "\u{2029}", "\r\n"] {
        let text = format!("# comment{brk}a: {}", "[".repeat(40));

        assert_eq!(depth_error_line(&text, 32), Some(2), "{brk:?}");
    }
}

#[test]
fn a_block_scalar_ends_at_a_less_indented_line() {
    let text = format!("a:\n  b: |\n    text\n  c: {}\n", "[".repeat(40));

    assert_eq!(depth_error_line(&text, 32), Some(4));
}

#[test]
fn a_plain_scalar_continues_only_on_more_indented_lines() {
    let continued = "a: one\n  two [[[[\nb: 1\n";
    let ended = format!("a: one\nb: {}\n", "[".repeat(40));

    assert_eq!(depth(continued), 1);
    assert_eq!(depth_error_line(&ended, 32), Some(2));
}

#[test]
fn deep_files_of_two_megabytes_are_rejected_in_milliseconds() {
    let flow = "[".repeat(2 << 20);
    let block: String = (0..1500)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    assert!(block.len() > 1 << 20);

    let start = Instant::now();
    let flow_line = depth_error_line(&flow, MAX_YAML_DEPTH);
    let block_line = depth_error_line(&block, MAX_YAML_DEPTH);
    let took = start.elapsed();

    assert_eq!(flow_line, Some(1));
    assert_eq!(block_line, Some(MAX_YAML_DEPTH + 1));
    // A bound on the complexity, not a speed target: a quadratic scan of 2 MiB would take
    // hours; a linear one takes milliseconds, and seconds on a debug build under load (it
    // took over 1 s at load average 10, so the bound is generous).
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn files_over_the_size_cap_are_refused_before_reading() {
    let dir = std::env::temp_dir().join(format!("yaml-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let big = dir.join("big.yaml");
    let small = dir.join("small.yaml");
    std::fs::write(&big, "a: 1\n".repeat(300)).expect("write");
    std::fs::write(&small, "a: 1\n").expect("write");

    let big_err = read_yaml(&big, 1024).expect_err("too large");
    let small_ok = read_yaml(&small, 1024).expect("small file");
    let missing = read_yaml(&dir.join("none.yaml"), 1024).expect_err("missing");
    std::fs::remove_dir_all(&dir).expect("cleanup");

    assert!(matches!(
        big_err,
        YamlLimitError::TooLarge { max_bytes: 1024 }
    ));
    assert_eq!(small_ok, "a: 1\n");
    assert!(matches!(missing, YamlLimitError::Io(_)));
}

/// A YAML value nested `depth` levels, mixing sequences and mappings.
fn nested_value() -> impl Strategy<Value = serde_yaml::Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| serde_yaml::Value::Number(n.into())),
        "[a-z\\[\\]{}:#'\" -]{0,8}".prop_map(serde_yaml::Value::String),
    ];
    leaf.prop_recursive(12, 64, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(serde_yaml::Value::Sequence),
            prop::collection::vec(("[a-z]{1,4}", inner), 1..3).prop_map(|kv| {
                serde_yaml::Value::Mapping(
                    kv.into_iter()
                        .map(|(k, v)| (serde_yaml::Value::String(k), v))
                        .collect(),
                )
            }),
        ]
    })
}

fn value_depth(v: &serde_yaml::Value) -> usize {
    match v {
        serde_yaml::Value::Sequence(s) => 1 + s.iter().map(value_depth).max().unwrap_or(0),
        serde_yaml::Value::Mapping(m) => 1 + m.values().map(value_depth).max().unwrap_or(0),
        _ => 0,
    }
}

proptest! {
    /// Block style (serde_yaml's output) and flow style (JSON): the scan counts at least the
    /// real depth, and at most a few levels more in block style.
    #[test]
    fn the_count_covers_the_real_depth(v in nested_value()) {
        let real = value_depth(&v);
        let block = serde_yaml::to_string(&v).expect("to yaml");
        let flow = serde_json::to_string(&v).expect("to json");

        let block_depth = depth(&block);
        let flow_depth = depth(&flow);

        prop_assert!(block_depth >= real && block_depth <= 2 * real + 1, "{real} vs {block_depth}:\n{block}");
        prop_assert_eq!(flow_depth, real, "{}", flow);
    }
}

proptest! {
    /// Random text made of YAML's indicator characters: whenever serde_yaml accepts it, the
    /// scan counts at least the depth serde_yaml built.
    #[test]
    fn the_count_is_never_below_what_the_parser_accepts(
        text in "([ ]{0,6}[\\[\\]{}'\"#:?|>&*!,a-]{0,12}[ :]{0,2}[ab]{0,2}(\n|\r|\u{2028}))*",
    ) {
        if let Ok(v) = serde_yaml::from_str::<serde_yaml::Value>(&text) {
            let scanned = depth(&text);

            prop_assert!(scanned >= value_depth(&v), "{} < {}: {:?}", scanned, value_depth(&v), text);
        }
    }
}

/// A YAML document tree rendered in any mix of styles, with scalars full of indicator
/// characters, comments, anchors and tags.
#[derive(Debug, Clone)]
enum Doc {
    Scalar(u8),
    Seq(Vec<Doc>),
    Map(Vec<Doc>),
}

fn doc() -> impl Strategy<Value = (Doc, Vec<u8>)> {
    let leaf = any::<u8>().prop_map(Doc::Scalar);
    let tree = leaf.prop_recursive(16, 64, 2, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(Doc::Seq),
            prop::collection::vec(inner, 1..3).prop_map(Doc::Map),
        ]
    });
    (tree, prop::collection::vec(any::<u8>(), 64))
}

/// Scalars that look like they open something.
const SCALARS: &[&str] = &[
    "'[[{'",
    "\"]]\\\"[\"",
    "it's",
    "a[b",
    "x # [[",
    "'a''b'",
    "!!str a",
    "&x a",
    "b:c",
];

/// Render `d` at block indentation `ind`; `style` bytes pick the style of each node.
fn render(d: &Doc, ind: usize, flow: bool, style: &mut impl Iterator<Item = u8>) -> String {
    let pick = style.next().unwrap_or(0);
    match d {
        Doc::Scalar(n) => {
            let s = SCALARS[usize::from(*n) % SCALARS.len()];
            if !flow && pick.is_multiple_of(7) {
                format!("|\n{}[[[{{\n", " ".repeat(ind + 1))
            } else if flow && (s.contains(['[', '#', ':']) && !s.starts_with(['\'', '"'])) {
                "'q['".to_string()
            } else {
                s.to_string()
            }
        }
        Doc::Seq(items) if flow || pick.is_multiple_of(3) => {
            let inner: Vec<String> = items.iter().map(|i| render(i, ind, true, style)).collect();
            format!("[{}]", inner.join(", "))
        }
        Doc::Map(items) if flow || pick.is_multiple_of(3) => {
            let inner: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(k, i)| format!("k{k}: {}", render(i, ind, true, style)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Doc::Seq(items) => {
            let mut out = String::from("\n");
            for i in items {
                let comment = if style.next().unwrap_or(0).is_multiple_of(4) {
                    "# c\n"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "{comment}{}- {}\n",
                    " ".repeat(ind),
                    render(i, ind + 2, false, style).trim_start()
                ));
            }
            out
        }
        Doc::Map(items) => {
            let mut out = String::from("\n");
            for (k, i) in items.iter().enumerate() {
                let extra = usize::from(style.next().unwrap_or(0) % 3);
                let value = render(i, ind + 1 + extra, false, style);
                let value = if value.starts_with('\n') {
                    value
                } else {
                    format!(" {value}")
                };
                out.push_str(&format!("{}k{k}:{value}\n", " ".repeat(ind)));
            }
            out
        }
    }
}

fn doc_depth(d: &Doc) -> usize {
    match d {
        Doc::Scalar(_) => 0,
        Doc::Seq(v) | Doc::Map(v) => 1 + v.iter().map(doc_depth).max().unwrap_or(0),
    }
}

proptest! {
    /// Documents in mixed styles (all of which serde_yaml accepts): the scan counts at least
    /// the depth serde_yaml builds.
    #[test]
    fn mixed_style_documents_are_never_undercounted((d, style) in doc()) {
        let text = render(&d, 0, false, &mut style.into_iter().cycle());

        let parsed = serde_yaml::from_str::<serde_yaml::Value>(&text);
        let scanned = depth(&text);

        let real = value_depth(&parsed.map_err(|e| TestCaseError::fail(format!("{e}:\n{text}")))?);
        prop_assert_eq!(real, doc_depth(&d), "{}", text);
        prop_assert!(scanned >= real, "{} < {}:\n{}", scanned, real, text);
    }
}
