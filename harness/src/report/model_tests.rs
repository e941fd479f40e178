//! Tests of the report model.

use super::*;

#[test]
fn report_of_the_synthetic_run_has_seeds_failures_and_totals() {
    let data = crate::report::testdata::synthetic_run();

    let r = build_report(&data);

    assert_eq!(r.schema, SCHEMA);
    assert_eq!(
        (r.kernel.as_str(), r.accelerator.as_str()),
        ("6.12.95+deb12-amd64", "tcg")
    );
    assert_eq!(
        (
            r.totals.seeds,
            r.totals.checks,
            r.totals.failures,
            r.totals.infra
        ),
        (5, 6, 2, 1)
    );
    assert_eq!(r.totals.workloads, 1);
    assert_eq!(
        r.totals.distinct_failures.len(),
        1,
        "two instances, one bucket"
    );
    assert_eq!(r.totals.suppressed.len(), 1);
    let statuses: Vec<SeedStatus> = r.seeds.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        vec![
            SeedStatus::Fail,
            SeedStatus::Pass,
            SeedStatus::Infra,
            SeedStatus::KnownBug,
            SeedStatus::Incomplete,
            SeedStatus::Fail
        ]
    );
    assert_eq!(r.seeds[0].ops.len(), 3);
    let slug = format!("failures/{}", crate::report::testdata::SLUG);
    assert_eq!(
        r.seeds[0].crash_points[2].failure_dir.as_deref(),
        Some(slug.as_str())
    );
    assert_eq!(
        r.seeds[5].crash_points[0].failure_dir.as_deref(),
        Some(slug.as_str())
    );
    assert_eq!(r.seeds[5].file.as_deref(), Some("specs/pwrite-fsync.yaml"));
    assert_eq!(r.failures.len(), 2, "the bucket and the known bug");
    assert_eq!(r.failures[0].bucket, crate::report::testdata::BUCKET);
    assert_eq!(
        (r.failures[0].occurrences, r.failures[0].items.clone()),
        (
            2,
            vec![
                TrialItem::Seed(1),
                TrialItem::Workload(crate::report::testdata::WORKLOAD_NAME.into())
            ]
        )
    );
    assert_eq!(r.failures[0].instances.len(), 2);
    assert_eq!(
        r.failures[0].reproduce.as_deref(),
        Some("cargo run --release -- campaign --mutant m5 --seeds 1..=1")
    );
    assert!(r.failures[1].suppressed && r.failures[1].dir.is_none());
    let json = serde_json::to_value(&r).expect("json");
    for key in [
        "schema",
        "powercut",
        "rng",
        "kernel",
        "image",
        "accelerator",
        "start",
        "crash_model",
        "filesystem",
        "mutant",
        "totals",
        "by_verdict",
        "checks",
        "seeds",
        "failures",
        "stopped",
    ] {
        assert!(json.get(key).is_some(), "report.json lacks `{key}`");
    }
    assert_eq!(json["seeds"][0]["seed"], 1);
    assert_eq!(
        json["seeds"][5]["workload"],
        crate::report::testdata::WORKLOAD_NAME
    );
}

#[test]
fn a_failure_without_a_directory_still_appears() {
    let mut data = crate::report::testdata::synthetic_run();
    data.failures.clear();

    let r = build_report(&data);

    assert_eq!(r.failures[0].title, crate::report::testdata::TITLE);
    assert_eq!(r.failures[0].reproduce, None);
    assert_eq!(r.totals.failures, 2);
}

#[test]
fn a_merge_lists_its_shards_and_names_the_missing_ones() {
    let mut data = crate::report::testdata::synthetic_run();
    let shard = |s: &str| s.parse::<Shard>().expect("shard");
    if let Some(info) = data.info.as_mut() {
        info.merged = vec![
            MergedRun {
                dir: "runs/a".into(),
                shard: Some(shard("1/3")),
                accelerator: "tcg".into(),
            },
            MergedRun {
                dir: "runs/c".into(),
                shard: Some(shard("3/3")),
                accelerator: "tcg".into(),
            },
        ];
    }
    let whole = build_report(&crate::report::testdata::synthetic_run());

    let r = build_report(&data);
    let json = serde_json::to_value(&r).expect("json");

    assert_eq!(r.missing_shards, [shard("2/3")]);
    assert_eq!(json["merged"][1]["shard"], "3/3");
    assert_eq!(json["missing_shards"][0], "2/3");
    let plain = serde_json::to_value(&whole).expect("json");
    assert!(plain.get("merged").is_none() && plain.get("shard").is_none());
}
