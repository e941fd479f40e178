//! Tests of merging run directories on disk (no VM): what is copied, what is renamed, what
//! is skipped, and refusals that leave nothing behind.

use super::*;
use crate::config::CampaignConfig;
use crate::journal::events::Event;
use crate::journal::JournalWriter;
use crate::records::item::TrialItem;

fn info(shard: Option<Shard>) -> RunInfo {
    crate::report::testdata::run_info("6.12", "abc", shard)
}

/// A shard's run directory: seed `seed` finished, the bucket `x`'s directory with `diff`,
/// a symlink and a scratch pmem file in the seed's directory, a checker log.
fn shard_dir(root: &Path, name: &str, shard: &str, seed: u64, diff: &str) -> PathBuf {
    let dir = root.join(name);
    let shard: Shard = shard.parse().expect("shard");
    let run = RunDir::create(&dir).expect("run dir");
    run.write_config(&CampaignConfig {
        shard: Some(shard),
        ..CampaignConfig::default()
    })
    .expect("config");
    run.write_run_info(&info(Some(shard))).expect("run-info");
    let item = TrialItem::Seed(seed);
    let (mut j, _) = JournalWriter::open_for(&run.journal(), None, Some(shard)).expect("journal");
    for e in [
        Event::SeedStarted { item: item.clone() },
        Event::RunFailed {
            item: item.clone(),
            verdict: workloads::oracle::Verdict::BootFailed,
            problem: "test".into(),
        },
        Event::FailureSaved {
            item: item.clone(),
            title: "t".into(),
            dir: "failures/x".into(),
            bucket: Some("x".into()),
        },
        Event::SeedDone { item },
    ] {
        j.append(&e).expect("append");
    }
    let seed_dir = run.seed_dir(seed);
    std::fs::create_dir_all(&seed_dir).expect("mkdir");
    std::fs::write(seed_dir.join("workload.yaml"), "ops: []\n").expect("write");
    std::fs::write(seed_dir.join("work.pmem"), "scratch").expect("write");
    std::os::unix::fs::symlink("/etc/hostname", seed_dir.join("link")).expect("symlink");
    std::fs::create_dir_all(dir.join("failures/x")).expect("mkdir");
    std::fs::write(dir.join("failures/x/diff.txt"), diff).expect("write");
    std::fs::create_dir_all(dir.join("checkers")).expect("mkdir");
    std::fs::write(dir.join("checkers/checker-0.console.log"), name).expect("write");
    dir
}

#[test]
fn shards_become_one_run_directory_and_a_second_bucket_directory_is_kept_renamed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = shard_dir(tmp.path(), "a", "1/2", 1, "first");
    let b = shard_dir(tmp.path(), "b", "2/2", 2, "second");
    let out = tmp.path().join("deep/out");

    let merged = merge(&out, &[b, a]).expect("merges");

    let read = |p: &str| std::fs::read_to_string(out.join(p)).expect(p);
    assert_eq!(
        read("failures/x/diff.txt"),
        "first",
        "shard 1/2's directory keeps the name"
    );
    assert_eq!(read("failures/x-shard-2-of-2/diff.txt"), "second");
    assert_eq!(merged.renamed.len(), 1);
    assert!(merged.missing.is_empty());
    let journal = read("journal.jsonl");
    assert!(
        journal.contains(r#""dir":"failures/x-shard-2-of-2""#),
        "{journal}"
    );
    let state = CampaignState::of(&journal::read(&out.join("journal.jsonl")).expect("j").events);
    assert_eq!(state.totals(&[]).seeds, 2);
    assert_eq!(state.other_failure_dirs("x"), ["failures/x-shard-2-of-2"]);
    assert!(out.join("seeds/1/workload.yaml").is_file() && out.join("seeds/2").is_dir());
    assert!(
        !out.join("seeds/1/work.pmem").exists(),
        "scratch files are not copied"
    );
    assert!(
        !out.join("seeds/1/link").exists(),
        "symlinks are not followed"
    );
    assert_eq!(read("checkers/shard-2-of-2/checker-0.console.log"), "b");
    let run = RunDir::new(&out);
    let cfg = run.read_config().expect("config").expect("present");
    let info = run.read_run_info().expect("info").expect("present");
    assert_eq!((cfg.shard, info.shard), (None, None));
    assert_eq!(info.merged.len(), 2);
    assert_eq!(
        info.merged[0].shard.map(|s| s.to_string()).as_deref(),
        Some("1/2")
    );
    let leftovers = std::fs::read_dir(tmp.path().join("deep"))
        .expect("ls")
        .count();
    assert_eq!(leftovers, 1, "no temporary directory left beside OUT");
}

#[test]
fn refusals_leave_nothing_behind_and_name_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = shard_dir(tmp.path(), "a", "1/2", 1, "first");
    let b = shard_dir(tmp.path(), "b", "2/2", 2, "second");
    std::fs::write(a.join("workloads.json"), "[]").expect("write");
    std::fs::write(
        b.join("workloads.json"),
        r#"[{"name": "x", "file": "x.yaml"}]"#,
    )
    .expect("write");
    let out = tmp.path().join("out");
    let full = tmp.path().join("full");
    std::fs::create_dir_all(&full).expect("mkdir");
    std::fs::write(full.join("x"), "").expect("write");
    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(&broken).expect("mkdir");

    let differ = merge(&out, &[a.clone(), b.clone()]).expect_err("differ");
    let occupied = merge(&full, std::slice::from_ref(&a)).expect_err("occupied");
    let missing = merge(&out, &[a, broken]).expect_err("not a run dir");

    assert!(differ.is_bad_input());
    assert!(
        differ.to_string().contains("b/workloads.json differs"),
        "{differ}"
    );
    assert!(!out.exists());
    let stray = std::fs::read_dir(tmp.path())
        .expect("ls")
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".powercut-merge-")
        });
    assert!(!stray, "the temporary directory is removed");
    assert!(
        occupied.to_string().contains("not an empty directory"),
        "{occupied}"
    );
    assert!(
        missing
            .to_string()
            .contains("broken/journal.jsonl: missing"),
        "{missing}"
    );
}

#[test]
fn the_workloads_guided_shards_derived_are_all_in_the_merged_manifest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = shard_dir(tmp.path(), "a", "1/2", 1, "first");
    let b = shard_dir(tmp.path(), "b", "2/2", 2, "second");
    let line = |name: &str| {
        format!(r#"{{"name": "{name}", "file": "corpus", "derived": "insert of c000000"}}"#)
    };
    let input = r#"{"name": "spec", "file": "specs/spec.yaml"}"#;
    let manifest = |name: &str| format!("[{input}, {}]", line(name));
    std::fs::write(a.join("workloads.json"), manifest("guided-s1of2-1")).expect("write");
    std::fs::write(b.join("workloads.json"), manifest("guided-s2of2-1")).expect("write");
    let out = tmp.path().join("out");

    merge(&out, &[a, b]).expect("merged");
    let names: Vec<String> = RunDir::new(&out)
        .read_workload_manifest()
        .expect("manifest")
        .into_iter()
        .map(|r| r.name)
        .collect();

    assert_eq!(names, ["spec", "guided-s1of2-1", "guided-s2of2-1"]);
}
