//! A campaign's [`Report`] as KCIDB v5 JSON (the kernel CI reporting database's I/O schema,
//! as the `kcidb-io` package defines it): one checkout, one build per kernel, and tests.
//! Pure mapping; `powercut report --kcidb FILE` writes it.
//!
//! # Mapping
//! - **checkout** `powercut:<run>`: `<run>` is a hash of the report, so exporting the same
//!   run directory twice gives the same ids (KCIDB merges objects by id) and two campaigns
//!   give different ones. The kernels tested are not checkouts powercut made, so only `id`,
//!   `origin` and `comment` are set.
//! - **build** `powercut:<run>:k<i>`, one per kernel (one for a campaign on one kernel, one
//!   per `kernels:` entry of a matrix): `config_name` is the kernel as the campaign named it
//!   (its release, or its `kernels:` spec), `comment` and `misc` say its release and guest
//!   image; status `PASS` (the kernel booted: a boot failure is an item's `ERROR`).
//! - **tests**, per build:
//!   - one per item (seed or workload file), path `powercut.<fs>.<model>` (e.g.
//!     `powercut.ext4.snapshot`), id `…:k<i>:seed-<n>` / `…:k<i>:workload-<name>`;
//!   - one per failure bucket, path `powercut.<fs>.<model>.<bucket-slug>` (the slug of its
//!     `failures/` directory, else of the bucket id, reduced to `[A-Za-z0-9_-]`), id
//!     `…:k<i>:bucket-<slug>`, its title as `comment`, its instances and reproducer in `misc`.
//! - **statuses**: item pass → `PASS`; a kernel-bug verdict → `FAIL`; an infrastructure
//!   problem and no kernel-bug verdict (nothing proven) → `ERROR`; started but not finished
//!   (the campaign was stopped) → `SKIP`; only failures matched by a suppression (a known
//!   bug, which the campaign does not fail on) → `DONE` ("completed, status of the code not
//!   reported"), for the item and for the suppressed bucket, so a dashboard neither shows a
//!   known bug as a regression nor as a pass.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::model::{FailureEntry, Report, SeedEntry, SeedStatus};
use crate::records::item::TrialItem;
use crate::records::CrashModel;

/// The KCIDB origin (CI system name) of everything powercut submits.
pub const ORIGIN: &str = "powercut";

/// The schema version written: v5.3, the newest of `kcidb-io` 141 (the version ci/setup
/// installs to validate it).
pub const VERSION: (u32, u32) = (5, 3);

/// Longest path segment written (a bucket slug can be long; KCIDB stores paths as keys).
const MAX_SEGMENT: usize = 120;

/// The KCIDB document of `report`.
pub fn kcidb_document(report: &Report) -> Value {
    let run = run_id(report);
    let checkout_id = format!("{ORIGIN}:{run}");
    let kernels: Vec<(String, &Report)> = if report.kernels.is_empty() {
        vec![(report.kernel.clone(), report)]
    } else {
        report
            .kernels
            .iter()
            .map(|k| (k.name.clone(), &k.report))
            .collect()
    };
    let mut builds = Vec::new();
    let mut tests = Vec::new();
    for (i, (name, r)) in kernels.iter().enumerate() {
        let build_id = format!("{checkout_id}:k{i}");
        builds.push(json!({
            "id": build_id,
            "origin": ORIGIN,
            "checkout_id": checkout_id,
            "architecture": "x86_64",
            "config_name": name,
            "comment": format!("guest kernel {} (guest image {})", r.kernel, r.image),
            "status": "PASS",
            "misc": {
                "kernel_release": r.kernel,
                "guest_image": r.image,
                "accelerator": r.accelerator,
            },
        }));
        tests.extend(r.seeds.iter().map(|s| item_test(&build_id, r, s)));
        tests.extend(r.failures.iter().map(|f| bucket_test(&build_id, r, f)));
    }
    json!({
        "version": {"major": VERSION.0, "minor": VERSION.1},
        "checkouts": [{
            "id": checkout_id,
            "origin": ORIGIN,
            "comment": format!(
                "powercut {} campaign: {} on {}, crash model {}{}",
                report.powercut,
                report.profile,
                report.filesystem.name(),
                model_name(report.crash_model),
                report.mutant.as_deref().map_or_else(String::new, |m| format!(", mutant {m}")),
            ),
            "misc": {"rng": report.rng},
        }],
        "builds": builds,
        "tests": tests,
    })
}

/// A short id of the run: the first 16 hex digits of the SHA-256 of its report.
fn run_id(report: &Report) -> String {
    let bytes = serde_json::to_vec(report).expect("a Report always serializes");
    hex::encode(&Sha256::digest(&bytes)[..8])
}

fn model_name(m: CrashModel) -> &'static str {
    match m {
        CrashModel::Snapshot => "snapshot",
        CrashModel::Cache => "cache",
    }
}

/// `powercut.<fs>.<model>`.
fn base_path(r: &Report) -> String {
    format!(
        "{ORIGIN}.{}.{}",
        r.filesystem.name(),
        model_name(r.crash_model)
    )
}

/// A KCIDB path segment from any text: `[A-Za-z0-9_-]+`, other characters as `-`, runs of
/// `-` folded, at most [`MAX_SEGMENT`] characters; `x` if nothing is left.
pub fn segment(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        if out.len() == MAX_SEGMENT {
            break;
        }
        out.push(c);
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push('x');
    }
    out
}

fn item_slug(item: &TrialItem) -> String {
    match item {
        TrialItem::Seed(s) => format!("seed-{s}"),
        TrialItem::Workload(n) => format!("workload-{}", segment(n)),
    }
}

/// The KCIDB status of an item.
pub fn item_status(s: SeedStatus) -> &'static str {
    match s {
        SeedStatus::Pass => "PASS",
        SeedStatus::Fail => "FAIL",
        SeedStatus::Infra => "ERROR",
        SeedStatus::Incomplete => "SKIP",
        SeedStatus::KnownBug => "DONE",
    }
}

fn item_test(build_id: &str, r: &Report, s: &SeedEntry) -> Value {
    let mut misc = Map::new();
    misc.insert("item".into(), json!(s.item.to_string()));
    misc.insert("crash_points".into(), json!(s.crash_points.len()));
    if let Some(f) = &s.file {
        misc.insert("workload_file".into(), json!(f));
    }
    if let Some(m) = &r.mutant {
        misc.insert("mutant".into(), json!(m));
    }
    let failing: Vec<&str> = s
        .crash_points
        .iter()
        .filter(|c| c.verdict.is_kernel_bug())
        .filter_map(|c| c.bucket.as_deref())
        .collect();
    let comment = match (s.status, &s.infra) {
        (SeedStatus::Infra, Some(why)) => format!("{}: infrastructure problem: {why}", s.item),
        (SeedStatus::Fail | SeedStatus::KnownBug, _) if !failing.is_empty() => {
            format!("{}: {}", s.item, failing.join("; "))
        }
        _ => format!(
            "{}: {} crash image(s), {}",
            s.item,
            s.crash_points.len(),
            s.status.name()
        ),
    };
    json!({
        "id": format!("{build_id}:{}", item_slug(&s.item)),
        "build_id": build_id,
        "origin": ORIGIN,
        "path": base_path(r),
        "status": item_status(s.status),
        "comment": comment,
        "duration": s.millis as f64 / 1000.0,
        "misc": misc,
    })
}

fn bucket_test(build_id: &str, r: &Report, f: &FailureEntry) -> Value {
    let slug = segment(f.slug().unwrap_or(&f.bucket));
    let items: Vec<String> = f.items.iter().map(ToString::to_string).collect();
    let mut misc = Map::new();
    misc.insert("bucket".into(), json!(f.bucket));
    misc.insert("verdict".into(), json!(f.verdict.to_string()));
    misc.insert("instances".into(), json!(f.occurrences));
    misc.insert("items".into(), json!(items));
    misc.insert("first_crash_point".into(), json!(f.point));
    misc.insert("suppressed".into(), json!(f.suppressed));
    if let Some(d) = &f.dir {
        misc.insert("failure_dir".into(), json!(d));
    }
    if let Some(cmd) = &f.reproduce {
        misc.insert("reproduce".into(), json!(cmd));
    }
    json!({
        "id": format!("{build_id}:bucket-{slug}"),
        "build_id": build_id,
        "origin": ORIGIN,
        "path": format!("{}.{slug}", base_path(r)),
        "status": if f.suppressed { "DONE" } else { "FAIL" },
        "comment": f.title,
        "misc": misc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::build_report;
    use crate::report::matrix::{matrix_report, KernelSection};
    use crate::report::testdata::synthetic_run;

    fn tests_of(doc: &Value) -> &Vec<Value> {
        doc["tests"].as_array().expect("tests")
    }

    #[test]
    fn every_item_and_bucket_becomes_a_test_with_its_status() {
        let report = build_report(&synthetic_run());

        let doc = kcidb_document(&report);

        assert_eq!(doc["version"], json!({"major": 5, "minor": 3}));
        assert_eq!(doc["checkouts"].as_array().map(Vec::len), Some(1));
        assert_eq!(doc["builds"].as_array().map(Vec::len), Some(1));
        assert_eq!(doc["builds"][0]["config_name"], "6.12.95+deb12-amd64");
        let statuses: Vec<(&str, &str)> = tests_of(&doc)
            .iter()
            .map(|t| {
                (
                    t["path"].as_str().expect("path"),
                    t["status"].as_str().expect("status"),
                )
            })
            .collect();
        let base = "powercut.ext4.snapshot";
        assert_eq!(
            statuses[..5],
            [
                (base, "FAIL"),
                (base, "PASS"),
                (base, "ERROR"),
                (base, "DONE"),
                (base, "SKIP"),
            ]
        );
        // Item 6 is the workload file (FAIL); then the buckets.
        assert_eq!(statuses[5], (base, "FAIL"));
        let buckets: Vec<_> = statuses[6..].to_vec();
        assert!(!buckets.is_empty());
        assert!(buckets
            .iter()
            .all(|(p, _)| p.starts_with("powercut.ext4.snapshot.")));
        let data_loss = format!("{base}.{}", segment(crate::report::testdata::SLUG));
        assert!(
            buckets.contains(&(data_loss.as_str(), "FAIL")),
            "{data_loss} in {buckets:?}"
        );
        assert!(buckets.iter().any(|(_, s)| *s == "DONE"), "{buckets:?}");
    }

    #[test]
    fn ids_are_namespaced_unique_and_stable() {
        let report = build_report(&synthetic_run());

        let a = kcidb_document(&report);
        let b = kcidb_document(&report);

        assert_eq!(a, b, "the same report gives the same ids");
        let mut ids: Vec<&str> = tests_of(&a)
            .iter()
            .chain(a["builds"].as_array().expect("builds"))
            .chain(a["checkouts"].as_array().expect("checkouts"))
            .map(|t| t["id"].as_str().expect("id"))
            .collect();
        assert!(ids.iter().all(|i| i.starts_with("powercut:")), "{ids:?}");
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "ids are unique");
        let mut other = report.clone();
        other.checks[0].millis += 1;
        assert_ne!(
            kcidb_document(&other)["checkouts"][0]["id"],
            a["checkouts"][0]["id"],
            "another run gets another checkout id"
        );
    }

    #[test]
    fn a_kernel_matrix_gives_one_build_per_kernel() {
        let one = build_report(&synthetic_run());
        let sections = ["suite:bookworm", "/srv/k/linux-7.3.4"]
            .iter()
            .enumerate()
            .map(|(i, n)| KernelSection {
                name: (*n).into(),
                html: format!("report-k{i}.html"),
                report: one.clone(),
            })
            .collect();
        let report = matrix_report(sections).expect("a matrix of two");

        let doc = kcidb_document(&report);

        let builds = doc["builds"].as_array().expect("builds");
        assert_eq!(builds.len(), 2);
        assert_eq!(builds[1]["config_name"], "/srv/k/linux-7.3.4");
        let on_k1 = tests_of(&doc)
            .iter()
            .filter(|t| t["build_id"] == builds[1]["id"])
            .count();
        assert_eq!(on_k1 * 2, tests_of(&doc).len());
    }

    #[test]
    fn segments_hold_only_kcidb_path_characters() {
        assert_eq!(segment("data-loss: f<0> [0..4)"), "data-loss-f-0-0-4");
        assert_eq!(segment("../../etc/passwd"), "etc-passwd");
        assert_eq!(segment("\u{0}\n"), "x");
        assert_eq!(segment("é_ok"), "_ok");
        let long = segment(&"a".repeat(1000));
        assert_eq!(long.len(), MAX_SEGMENT);
    }

    proptest::proptest! {
        #[test]
        fn any_text_makes_a_valid_segment(s in ".*") {
            let seg = segment(&s);
            proptest::prop_assert!(!seg.is_empty() && seg.len() <= MAX_SEGMENT);
            proptest::prop_assert!(seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        }
    }
}
