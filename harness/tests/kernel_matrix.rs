//! A kernel matrix (`kernels:`) through the `powercut` binary, on two real kernels cached
//! by `ci/setup --kernels` (the default 6.12 and Debian 12's own 6.1): every seed runs on
//! both, the journal's lines carry their kernel, `report.json` has one section per kernel
//! and their sums, the JUnit XML one test suite per kernel, the summary a kernel × verdict
//! table, and `--resume` of a finished matrix runs nothing again.

mod common;

use std::path::Path;

/// The default kernel and Debian 12's own 6.1, as `powercut kernel list` names them (the 6.1
/// release changes with Debian's point releases, so it is read, not written down).
fn kernels() -> [String; 2] {
    let (code, text) = common::powercut(&["kernel", "list"]);
    assert_eq!(code, 0, "kernel list: {text}");
    let release = |pred: &dyn Fn(&str) -> bool| {
        text.lines()
            .skip(1)
            .filter(|l| !l.starts_with(' '))
            .find(|l| pred(l))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                panic!("no such kernel cached (run `ci/setup --kernels bookworm`):\n{text}")
            })
    };
    [
        release(&|l| l.ends_with("(default)")),
        release(&|l| l.starts_with("6.1.") && l.contains("bookworm")),
    ]
}

fn matrix_config(dir: &Path) -> String {
    let cfg = dir.join("matrix.yaml");
    std::fs::write(
        &cfg,
        format!(
            "kernels:\n  - \"{}\"\n  - \"{}\"\nseeds: \"1..=2\"\nworkers: auto\ncheckers: auto\n",
            kernels()[0],
            kernels()[1]
        ),
    )
    .expect("write config");
    cfg.to_string_lossy().into_owned()
}

#[test]
fn every_seed_runs_on_every_kernel_and_the_reports_group_by_kernel() {
    common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = matrix_config(dir.path());
    let run = dir.path().join("run");
    let out = run.to_string_lossy().into_owned();
    let junit = dir.path().join("junit.xml");

    let (code, text) = common::powercut(&[
        "campaign",
        "--config",
        &cfg,
        "--output",
        &out,
        "--junit",
        &junit.to_string_lossy(),
    ]);

    assert_eq!(code, 0, "{text}");
    assert!(text.contains("kernel matrix"), "{text}");
    // `auto` says what it chose, once per kernel.
    let chose = text
        .lines()
        .filter(|l| l.contains("auto: ") && l.contains("checker VM(s)"))
        .count();
    assert_eq!(chose, 2, "{text}");
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).expect("journal");
    for k in kernels() {
        let done = journal
            .lines()
            .filter(|l| l.contains(r#""event":"seed_done""#))
            .filter(|l| l.contains(&format!(r#""kernel":"{k}""#)))
            .count();
        assert_eq!(done, 2, "kernel {k}: {journal}");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).expect("report.json"))
            .expect("JSON");
    let sections = report["kernels"].as_array().expect("kernel sections");
    assert_eq!(sections.len(), 2, "{report}");
    let mut checks = 0;
    for (s, k) in sections.iter().zip(kernels()) {
        assert_eq!(s["name"], k);
        assert_eq!(s["report"]["kernel"], k, "{s}");
        assert_eq!(s["report"]["totals"]["seeds"], 2, "{s}");
        assert!(run.join(s["html"].as_str().expect("html")).is_file());
        checks += s["report"]["totals"]["checks"].as_u64().expect("checks");
    }
    assert_eq!(report["totals"]["checks"].as_u64(), Some(checks));
    assert_eq!(report["totals"]["failures"], 0);
    let xml = std::fs::read_to_string(&junit).expect("junit");
    let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("JUnit parses");
    let suites: Vec<String> = parsed
        .test_suites
        .iter()
        .map(|s| s.name.as_str().to_owned())
        .collect();
    assert_eq!(
        suites,
        kernels().map(|k| format!("powercut {k}")).to_vec(),
        "{xml}"
    );

    let (again, text) = common::powercut(&["campaign", "--resume", "--output", &out]);

    assert_eq!(again, 0, "{text}");
    let after = std::fs::read_to_string(run.join("journal.jsonl")).expect("journal");
    assert_eq!(
        after.matches(r#""event":"seed_started""#).count(),
        journal.matches(r#""event":"seed_started""#).count(),
        "a resumed finished matrix ran a seed again"
    );
}

#[test]
fn a_kernel_listed_twice_or_with_kernel_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bad.yaml");
    let k = &kernels()[1];
    std::fs::write(&cfg, format!("kernels: [\"{k}\", \"{k}\"]\n")).expect("write");

    let (code, text) = common::powercut(&["campaign", "--config", &cfg.to_string_lossy()]);

    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("`kernels`") && text.contains("listed twice"),
        "{text}"
    );
}
