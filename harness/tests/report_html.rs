//! `powercut report` on a synthetic run directory (the files a campaign writes, no VM), and
//! the resulting `report.html` loaded in headless Chromium: it loads, its script runs without
//! errors, it shows the failure count, and markup in file names stays text.
//! Needs Debian's `chromium` (installed by `ci/setup`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use powercut::test_support::slug;
use powercut::test_support::BucketContext;
use powercut::test_support::CampaignConfig;
use powercut::test_support::CheckOutcome;
use powercut::test_support::JournalWriter;
use powercut::test_support::TrialItem;
use powercut::test_support::{deciding_failure, CrashLabel};
use powercut::test_support::{failure, FailureRecord, Instance, NewFailure, FAILURE_SCHEMA};
use powercut::test_support::{CheckRecord, Event};
use powercut::test_support::{RunDir, RunInfo};
use workloads::oracle::{expectation, AllowedVersion, CrashPoint, Finding, FsRules, Verdict};
use workloads::{Op, Workload};

/// How long Chromium may take to load the page and dump its DOM.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

/// A file name that would run a script if the report did not escape it.
const HOSTILE_FILE: &str = "f<script>document.body.setAttribute('data-pwned','1')</script>";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn workload(seed: u64) -> Workload {
    let file = HOSTILE_FILE.to_owned();
    Workload {
        name: format!("seed-{seed}"),
        seed,
        profile: Some("smoke".into()),
        ops: vec![
            Op::create(file.clone()),
            Op::Pwrite {
                file: file.clone(),
                off: 0,
                len: 16,
                pattern: None,
            },
            Op::Fsync { file },
        ],
    }
}

fn label(k: usize, kind: &str) -> CrashLabel {
    CrashLabel {
        point: CrashPoint::AfterOp(k),
        kind: kind.into(),
    }
}

fn pass(seed: u64, k: usize, kind: &str) -> Event {
    Event::Checked(CheckRecord {
        item: TrialItem::Seed(seed),
        at: label(k, kind),
        model: "snapshot".into(),
        verdict: Verdict::Pass,
        failure: None,
        problem: None,
        millis: 250,
        phases: None,
        same_as: None,
    })
}

fn ran(seed: u64, images: usize) -> Event {
    Event::RunDone {
        item: TrialItem::Seed(seed),
        images,
        boot_ms: 6500,
        op_micros: 1200,
        live_mismatch: None,
        phases: None,
    }
}

/// Write what a campaign over seeds 1..=3 with mutant m5 writes (through the same writers
/// the campaign uses): seed 1 loses data after op 2 (fsync), seed 2 passes, seed 3 fails to
/// boot. Returns the failure title and its bucket id.
fn synthetic_run_dir(dir: &Path) -> (String, String) {
    let run = RunDir::create(dir).expect("run dir");
    run.write_config(&CampaignConfig {
        mutant: Some("m5".into()),
        seeds: "1..=3".into(),
        ..CampaignConfig::default()
    })
    .expect("config.yaml");
    run.write_run_info(&RunInfo {
        powercut: "0.1.0".into(),
        rng: workloads::generator::RNG.into(),
        kernel: "6.12.95+deb12-amd64".into(),
        image: "fd15f05972f0418e".into(),
        accelerator: "tcg".into(),
        start: "restore".into(),
        restore_fallback: None,
        modules: vec![],
        kernels: vec![],
        shard: None,
        merged: vec![],
    })
    .expect("run-info.json");
    let finding = Finding {
        verdict: Verdict::DataLoss,
        file: HOSTILE_FILE.into(),
        start: 0,
        end: 16,
        expected: vec![AllowedVersion {
            op: Some(1),
            bytes: vec![0x5a; 16],
        }],
        found: [[0x5a; 8], [0; 8]].concat(),
        allowed_sizes: None,
        found_size: Some(16),
        promised_by: Some(2),
        at: "after op 2 (fsync)".into(),
        meta: None,
    };
    let outcome = CheckOutcome {
        verdict: Verdict::DataLoss,
        findings: vec![finding],
        detail: String::new(),
        millis: 250,
        bytes_written: 65536,
        phases: Default::default(),
        same_as: None,
    };
    let w1 = workload(1);
    let exp = expectation(&w1, &[], CrashPoint::AfterOp(2), &FsRules::ext4());
    let ctx = BucketContext {
        workload: &w1,
        model: "snapshot",
        filesystem: "ext4",
        mutant: Some("m5"),
        modules: &[],
    };
    let fail = deciding_failure(&outcome, &exp, &ctx).expect("a failure");
    for seed in 1..=3 {
        let sdir = run
            .write_workload(&TrialItem::Seed(seed), &workload(seed))
            .expect("workload");
        write(
            &sdir.join(format!("work-{seed}.console.log")),
            "[    1.2] EXT4-fs (pmem0): mounted filesystem with ordered data mode\npowercut: ready\n",
        );
    }
    let record = FailureRecord {
        schema: FAILURE_SCHEMA,
        title: fail.title.clone(),
        verdict: fail.verdict,
        signature: fail.signature.clone(),
        bucket: fail.bucket.as_deref().cloned(),
        crash: label(2, "fsync"),
        crash_model: "snapshot".into(),
        seed: 1,
        workload: None,
        filesystem: "ext4".into(),
        mutant: Some("m5".into()),
        modules: Vec::new(),
        reproduce: "cargo run --release -- repro --config runs/x/config.yaml --seed 1".into(),
        cache_cut: None,
        kernel: None,
    };
    let first = Instance {
        item: TrialItem::Seed(1),
        at: label(2, "fsync"),
        model: "snapshot".into(),
        verdict: fail.verdict,
        title: fail.title.clone(),
        bucket: fail.bucket_id(),
    };
    let fdir = failure::write(
        &run,
        &NewFailure {
            record: &record,
            workload: &w1,
            expectation: &exp,
            outcome: &outcome,
            console: &run.seed_dir(1).join("work-1.console.log"),
            image: None,
            lost_lines: None,
            first: &first,
            lost_report: None,
        },
    )
    .expect("failure dir");
    let (mut journal, _) = JournalWriter::open(&run.journal()).expect("journal");
    for e in [
        Event::Started {
            resumed: false,
            workers: 1,
            checkers: 1,
        },
        Event::SeedStarted {
            item: TrialItem::Seed(1),
        },
        ran(1, 3),
        pass(1, 0, "create"),
        pass(1, 1, "pwrite"),
        Event::Checked(CheckRecord {
            item: TrialItem::Seed(1),
            at: label(2, "fsync"),
            model: "snapshot".into(),
            verdict: Verdict::DataLoss,
            failure: Some(fail.clone()),
            problem: None,
            millis: 250,
            phases: None,
            same_as: None,
        }),
        Event::FailureSaved {
            item: TrialItem::Seed(1),
            title: fail.title.clone(),
            dir: fdir,
            bucket: Some(fail.bucket_id()),
        },
        Event::SeedDone {
            item: TrialItem::Seed(1),
        },
        Event::SeedStarted {
            item: TrialItem::Seed(2),
        },
        ran(2, 1),
        pass(2, 2, "fsync"),
        Event::SeedDone {
            item: TrialItem::Seed(2),
        },
        Event::SeedStarted {
            item: TrialItem::Seed(3),
        },
        Event::RunFailed {
            item: TrialItem::Seed(3),
            verdict: Verdict::BootFailed,
            problem: "QEMU exited during boot".into(),
        },
        Event::SeedDone {
            item: TrialItem::Seed(3),
        },
    ] {
        journal.append(&e).expect("append");
    }
    let bucket = fail.bucket_id();
    (fail.title, bucket)
}

/// Chromium's `--dump-dom` of `page` and its stderr (console messages are logged there).
fn chromium_dump_dom(page: &Path, scratch: &Path) -> (String, String) {
    let profile = tempfile::tempdir_in(scratch).expect("profile dir");
    let (out_path, err_path) = (scratch.join("dom.html"), scratch.join("chromium.err"));
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("dom file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `chromium` ({e}): run ci/setup, which installs Debian's chromium")
        });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > CHROMIUM_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let dom = std::fs::read_to_string(&out_path).expect("dom");
    let err = std::fs::read_to_string(&err_path).expect("stderr");
    assert!(status.success(), "chromium failed: {status}\n{err}");
    (dom, err)
}

#[test]
fn report_html_loads_in_chromium_and_shows_the_failure_count() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let run: PathBuf = scratch.path().join("campaign-synthetic");
    let (title, bucket) = synthetic_run_dir(&run);
    let junit = run.join("junit.xml");

    let out = Command::new(env!("CARGO_BIN_EXE_powercut"))
        .arg("report")
        .arg(&run)
        .arg("--junit")
        .arg(&junit)
        .output()
        .expect("run powercut report");
    let (dom, console) = chromium_dump_dom(&run.join("report.html"), scratch.path());

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let js_errors: Vec<&str> = console
        .lines()
        .filter(|l| l.contains(":CONSOLE") && (l.contains("Uncaught") || l.contains("Error")))
        .collect();
    assert!(js_errors.is_empty(), "JavaScript errors: {js_errors:#?}");
    assert!(
        dom.contains("data-js=\"ok\""),
        "the page's script did not run to its end"
    );
    assert!(
        dom.contains("<strong id=\"failure-count\">1</strong>"),
        "{dom}"
    );
    assert!(
        dom.contains("<strong id=\"infra-count\">1</strong>"),
        "{dom}"
    );
    assert!(
        !dom.contains("data-pwned=\"1\""),
        "a file name ran as a script"
    );
    assert!(
        dom.contains(&format!("id=\"f-{}\"", slug(&bucket))),
        "{dom}"
    );
    assert!(dom.contains("cargo run --release -- repro --config runs/x/config.yaml --seed 1"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).expect("json"))
            .expect("report.json parses");
    assert_eq!(report["schema"], 4);
    assert_eq!(report["totals"]["failures"], 1);
    assert_eq!(report["seeds"].as_array().map(Vec::len), Some(3));
    assert_eq!(report["failures"][0]["title"], title.as_str());
    assert_eq!(report["failures"][0]["bucket"], bucket.as_str());
    assert_eq!(
        bucket,
        "data-loss of pwrite_data promised by fsync (snapshot, ext4, m5)"
    );
    let xml = std::fs::read_to_string(&junit).expect("junit.xml");
    let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("junit parses");
    assert_eq!((parsed.tests, parsed.failures, parsed.errors), (3, 1, 1));
}
