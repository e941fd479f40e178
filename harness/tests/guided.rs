//! Coverage-guided generation end to end (boots VMs under TCG): a short `campaign --guided`
//! derives workloads that are items with their own saved workload files, keeps a corpus
//! directory with an index, and a second campaign given that `--corpus` derives from its
//! entries; a guided campaign without coverage or without an end is refused (no VM).

mod common;

use std::path::Path;

fn json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("JSON")
}

/// The ids of the corpus index's entries.
fn entry_ids(index: &serde_json::Value) -> Vec<String> {
    index["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn a_guided_campaign_derives_items_keeps_a_corpus_and_a_second_one_reuses_it() {
    common::fixture();
    let first = tempfile::tempdir().expect("tempdir");
    let second = tempfile::tempdir().expect("tempdir");
    let (a, b) = (first.path().join("run"), second.path().join("run"));
    let corpus = a.join("corpus");

    let (code, text) = common::powercut(&[
        "campaign",
        "--accel",
        "tcg",
        "--seeds",
        "1..3",
        "--guided",
        "--guided-items",
        "3",
        "--output",
        &a.to_string_lossy(),
    ]);
    let index = json(&corpus.join("index.json"));
    let ids = entry_ids(&index);
    let (code2, text2) = common::powercut(&[
        "campaign",
        "--accel",
        "tcg",
        "--seeds",
        "",
        "--guided",
        "--guided-items",
        "2",
        "--corpus",
        &corpus.to_string_lossy(),
        "--output",
        &b.to_string_lossy(),
    ]);

    assert_eq!(code, 0, "{text}");
    assert!(!ids.is_empty(), "{index}");
    for id in &ids {
        assert!(corpus.join(format!("{id}.yaml")).is_file(), "{id}");
    }
    let manifest = json(&a.join("workloads.json"));
    let derived: Vec<&serde_json::Value> = manifest
        .as_array()
        .expect("list")
        .iter()
        .filter(|w| w["derived"].is_string())
        .collect();
    assert!(!derived.is_empty(), "{manifest}\n{text}");
    for w in &derived {
        let name = w["name"].as_str().expect("name");
        let file = a.join("workloads").join(name).join("workload.yaml");
        let (check, out) = common::powercut(&["workload", "check", &file.to_string_lossy()]);
        assert_eq!(check, 0, "{out}");
        assert!(
            a.join("workloads")
                .join(name)
                .join("coverage.json")
                .is_file(),
            "{name}"
        );
        assert!(text.contains(&format!("workload/{name}")), "{text}");
    }
    assert_eq!(code2, 0, "{text2}");
    let manifest2 = json(&b.join("workloads.json"));
    let from_first = manifest2
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|w| w["derived"].as_str())
        .filter(|d| ids.iter().any(|id| d.contains(id.as_str())))
        .count();
    assert!(from_first > 0, "{manifest2}\n{text2}");
    let after = entry_ids(&json(&corpus.join("index.json")));
    assert!(after.starts_with(&ids), "{after:?} lost entries of {ids:?}");
    assert!(
        !b.join("corpus").exists(),
        "--corpus given: no corpus of its own"
    );
}

#[test]
fn a_guided_campaign_without_coverage_or_an_end_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run").to_string_lossy().into_owned();
    let flags = ["campaign", "--output", &out, "--guided"];

    let (no_end, t1) = common::powercut(&flags);
    let (kvm, t2) =
        common::powercut(&[&flags[..], &["--guided-items", "3", "--accel", "kvm"]].concat());
    let (no_guided, t3) = common::powercut(&["campaign", "--output", &out, "--corpus", "/tmp"]);

    assert_eq!(no_end, 2, "{t1}");
    assert!(t1.contains("--guided-items"), "{t1}");
    assert_eq!(kvm, 2, "{t2}");
    assert!(t2.contains("TCG"), "{t2}");
    assert_eq!(no_guided, 2, "{t3}");
    assert!(t3.contains("guided"), "{t3}");
    assert!(!dir.path().join("run").exists());
}
