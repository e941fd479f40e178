//! Sharding a sweep through the `powercut` binary: `--shard 1/2` and `--shard 2/2` of a
//! small m5 smoke campaign, merged with `report merge`, give the unsharded campaign's totals
//! and failures; merging directories of two different campaigns, a whole campaign with a
//! shard, or a damaged shard is refused naming the field or file; `--resume` keeps its
//! shard. One VM test (three short campaigns, one after the other) plus bad input that boots
//! nothing.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

/// A smoke campaign with m5, three seeds, and no inside-op crash points: the points are
/// barriers after ops, so every run cuts the power at the same places and the verdicts of
/// the sharded and unsharded runs can be compared one to one.
fn config(dir: &Path) -> String {
    let p = dir.join("shard-smoke.yaml");
    std::fs::write(
        &p,
        "profile: smoke\nseeds: \"1..4\"\nmutant: m5\nworkers: 1\ncheckers: 1\n\
         crash_points:\n  after_durability_ops: true\n  random_after: 2\n  inside: 0\n",
    )
    .expect("write config");
    p.to_string_lossy().into_owned()
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json"))
        .expect("report.json is JSON")
}

/// Every check as (item, crash point, model, verdict, bucket), counted.
fn checks(r: &serde_json::Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in r["checks"].as_array().expect("checks") {
        let key = format!(
            "{} {} {} {} {}",
            c["seed"], c["point"], c["model"], c["verdict"], c["bucket"]
        );
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

/// Buckets with their instance counts.
fn buckets(r: &serde_json::Value) -> BTreeMap<String, u64> {
    r["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| {
            (
                f["bucket"].as_str().expect("bucket").to_owned(),
                f["occurrences"].as_u64().expect("occurrences"),
            )
        })
        .collect()
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn two_shards_merged_equal_the_unsharded_campaign_and_other_campaigns_are_refused() {
    common::fixture();
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let (whole, s1, s2, merged) = (
        tmp.path().join("whole"),
        tmp.path().join("s1"),
        tmp.path().join("s2"),
        tmp.path().join("merged"),
    );
    let campaign = |out: &Path, shard: Option<&str>| {
        let out = s(out);
        let mut args = vec!["campaign", "--config", &cfg, "--output", &out];
        if let Some(k) = shard {
            args.extend(["--shard", k]);
        }
        common::powercut(&args)
    };

    let clock = std::time::Instant::now();
    let (code_whole, text_whole) = campaign(&whole, None);
    let t_whole = clock.elapsed();
    let (code_1, text_1) = campaign(&s1, Some("1/2"));
    let t_1 = clock.elapsed() - t_whole;
    let (code_2, text_2) = campaign(&s2, Some("2/2"));
    let t_2 = clock.elapsed() - t_whole - t_1;
    let junit = tmp.path().join("merged.xml");
    let (code_m, text_m) = common::powercut(&[
        "report",
        "merge",
        &s(&merged),
        &s(&s1),
        &s(&s2),
        "--junit",
        &s(&junit),
    ]);

    assert_eq!(code_whole, 1, "m5 is caught: {text_whole}");
    assert!(
        text_1.contains("shard 1/2: 0 workload(s), 2 seeds"),
        "{text_1}"
    );
    assert!(
        text_2.contains("shard 2/2: 0 workload(s), 1 seeds"),
        "{text_2}"
    );
    assert!(
        [0, 1].contains(&code_1) && [0, 1].contains(&code_2),
        "{text_1}{text_2}"
    );
    assert_eq!(code_m, 1, "the merge exits like the campaign: {text_m}");
    let (w, m, r1) = (report(&whole), report(&merged), report(&s1));
    assert_eq!(r1["shard"], "1/2", "a shard's report names it");
    assert_eq!(r1["totals"]["seeds"], 2, "seeds 1 and 3");
    assert_eq!(
        m["merged"].as_array().map(Vec::len),
        Some(2),
        "{}",
        m["merged"]
    );
    assert!(m.get("missing_shards").is_none(), "no shard missing");
    for key in [
        "seeds",
        "checks",
        "passed",
        "failures",
        "infra",
        "distinct_failures",
    ] {
        assert_eq!(m["totals"][key], w["totals"][key], "totals.{key}");
    }
    assert!(w["totals"]["failures"].as_u64().expect("failures") > 0);
    assert_eq!(m["by_verdict"], w["by_verdict"]);
    assert_eq!(
        checks(&m),
        checks(&w),
        "the same checks with the same verdicts"
    );
    assert_eq!(
        buckets(&m),
        buckets(&w),
        "the same buckets with as many instances"
    );
    for f in m["failures"].as_array().expect("failures") {
        let dir = f["dir"].as_str().expect("every bucket has its directory");
        let instances = std::fs::read_to_string(merged.join(dir).join("instances.jsonl"))
            .expect("instances.jsonl");
        assert_eq!(
            instances.lines().count() as u64,
            f["occurrences"].as_u64().expect("n"),
            "{dir}: instances of every shard"
        );
        assert!(
            f["reproduce"]
                .as_str()
                .is_some_and(|r| r.contains(&s(&merged.join("config.yaml")))),
            "{dir}: the reproduce command names the merged config: {f}"
        );
    }
    eprintln!(
        "unsharded ({t_whole:.0?}): {}\nshard 1/2 ({t_1:.0?}): {}\nshard 2/2 ({t_2:.0?}): {}\nmerged: {}",
        w["totals"], r1["totals"], report(&s2)["totals"], m["totals"]
    );
    let shard_dirs = |d: &Path| std::fs::read_dir(d.join("failures")).map_or(0, Iterator::count);
    assert_eq!(
        shard_dirs(&merged),
        shard_dirs(&s1) + shard_dirs(&s2),
        "every shard's failure directory is kept"
    );
    let xml = std::fs::read_to_string(&junit).expect("junit");
    let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("JUnit parses");
    assert_eq!(
        parsed.tests, 3,
        "one testcase per seed of both shards: {xml}"
    );
    assert!(
        text_m.contains("failure instances"),
        "the summary: {text_m}"
    );

    // Resuming a shard with another shard is refused before any VM boots.
    let (code, text) = common::powercut(&[
        "campaign",
        "--resume",
        "--output",
        &s(&s1),
        "--shard",
        "2/2",
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("shard 1/2") && text.contains("shard 2/2"),
        "{text}"
    );

    // Another campaign: shard 2/2's directory as if it had run the stock kernel.
    let other = tmp.path().join("other");
    copy_dir(&s2, &other);
    let yaml = std::fs::read_to_string(other.join("config.yaml")).expect("config");
    std::fs::write(
        other.join("config.yaml"),
        yaml.replace("mutant: m5", "mutant: null"),
    )
    .expect("write");
    let refused = |dirs: &[&Path]| {
        let out = tmp.path().join("refused");
        let mut args = vec!["report".to_owned(), "merge".to_owned(), s(&out)];
        args.extend(dirs.iter().map(|d| s(d)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, text) = common::powercut(&args);
        assert!(!out.exists(), "nothing written when refused: {text}");
        (code, text)
    };
    let (code, text) = refused(&[&s1, &other]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("config.yaml `mutant` is m5 in"), "{text}");
    let (code, text) = refused(&[&whole, &s1]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("different splits"), "{text}");
    let (code, text) = refused(&[&s1, &s1]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("shard 1/2 is given twice"), "{text}");

    // A damaged shard: a corrupt journal names its line; a missing run-info.json its file.
    let damaged = tmp.path().join("damaged");
    copy_dir(&s2, &damaged);
    let journal = std::fs::read_to_string(damaged.join("journal.jsonl")).expect("journal");
    let mut lines: Vec<&str> = journal.lines().collect();
    lines[2] = "{\"event\":\"seed_dne\"}";
    std::fs::write(damaged.join("journal.jsonl"), lines.join("\n") + "\n").expect("write");
    let (code, text) = refused(&[&s1, &damaged]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("damaged/journal.jsonl:3"), "{text}");
    copy_dir(&s2, &tmp.path().join("noinfo"));
    std::fs::remove_file(tmp.path().join("noinfo/run-info.json")).expect("rm");
    let (code, text) = refused(&[&s1, &tmp.path().join("noinfo")]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("noinfo/run-info.json: missing"), "{text}");

    // A missing shard is merged, said, and exits 69 unless a failure decides it.
    let (code, text) =
        common::powercut(&["report", "merge", &s(&tmp.path().join("half")), &s(&s1)]);
    assert!([1, 69].contains(&code), "{text}");
    assert!(text.contains("2/2 of the split are missing"), "{text}");
    assert_eq!(report(&tmp.path().join("half"))["missing_shards"][0], "2/2");
}

#[test]
fn a_shard_that_is_not_k_of_n_is_a_usage_error() {
    for bad in ["0/2", "3/2", "1/1001", "x"] {
        let (code, text) = common::powercut(&["campaign", "--shard", bad, "--seeds", "1..3"]);

        assert_eq!(code, 2, "{bad}: {text}");
        assert!(text.contains("is not a shard"), "{bad}: {text}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).expect("copy");
        }
    }
}
