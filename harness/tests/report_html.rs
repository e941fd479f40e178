//! `powercut report` on a synthetic run directory (the files a campaign writes, no VM), and
//! the resulting `report.html` loaded in headless Chromium: it loads, its script runs without
//! errors, it shows the failure count, and markup in file names stays text.
//! Needs Debian's `chromium` (installed by `ci/setup`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use powercut::campaign::config::CampaignConfig;
use powercut::campaign::failure::slug;
use powercut::campaign::journal::JournalEntry;
use powercut::campaign::CheckRecord;
use powercut::checker::CheckOutcome;
use powercut::report::RunInfo;
use workloads::oracle::{AllowedVersion, Finding, Verdict};
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
            Op::Create { file: file.clone() },
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

fn check(seed: u64, point: &str, verdict: Verdict, title: Option<&str>) -> JournalEntry {
    JournalEntry::Check(CheckRecord {
        seed,
        point: point.into(),
        verdict,
        title: title.map(str::to_owned),
        millis: 250,
        suppressed: false,
    })
}

/// Write what a campaign over seeds 1..=3 with mutant m5 writes: seed 1 loses data after
/// op 2 (fsync), seed 2 passes, seed 3 fails to boot. Returns the failure title.
fn synthetic_run_dir(dir: &Path) -> String {
    let cfg = CampaignConfig {
        mutant: Some("m5".into()),
        seeds: "1..=3".into(),
        ..CampaignConfig::default()
    };
    write(
        &dir.join("config.yaml"),
        &serde_yaml::to_string(&cfg).expect("yaml"),
    );
    RunInfo {
        powercut: "0.1.0".into(),
        rng: workloads::generator::RNG.into(),
        kernel: "6.12.95+deb12-amd64".into(),
        image: "fd15f05972f0418e".into(),
        accelerator: "tcg".into(),
    }
    .write(dir)
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
    };
    let title = finding.title();
    let journal = [
        JournalEntry::SeedStarted { seed: 1 },
        check(1, "after op 0 (create)", Verdict::Pass, None),
        check(1, "inside op 1 (pwrite)", Verdict::Pass, None),
        check(1, "after op 2 (fsync)", Verdict::DataLoss, Some(&title)),
        JournalEntry::SeedDone {
            seed: 1,
            infra: None,
        },
        JournalEntry::SeedStarted { seed: 2 },
        check(2, "after op 2 (fsync)", Verdict::Pass, None),
        JournalEntry::SeedDone {
            seed: 2,
            infra: None,
        },
        JournalEntry::SeedStarted { seed: 3 },
        JournalEntry::SeedDone {
            seed: 3,
            infra: Some("seed 3: boot-failed: QEMU exited during boot".into()),
        },
    ]
    .iter()
    .map(|e| serde_json::to_string(e).expect("json") + "\n")
    .collect::<String>();
    write(&dir.join("journal.jsonl"), &journal);
    for seed in 1..=3 {
        let sdir = dir.join("seeds").join(seed.to_string());
        write(
            &sdir.join("workload.yaml"),
            &serde_yaml::to_string(&workload(seed)).expect("yaml"),
        );
        write(
            &sdir.join(format!("work-{seed}.console.log")),
            "[    1.2] EXT4-fs (pmem0): mounted filesystem with ordered data mode\npowercut: ready\n",
        );
    }
    let fdir = dir.join("failures").join(slug(&title));
    write(&fdir.join("title.txt"), &format!("{title}\n"));
    write(
        &fdir.join("crash-point.txt"),
        "after op 2 (fsync)\nseed 1\nrules ext4\n",
    );
    write(
        &fdir.join("workload.yaml"),
        &serde_yaml::to_string(&workload(1)).expect("yaml"),
    );
    let outcome = CheckOutcome {
        verdict: Verdict::DataLoss,
        findings: vec![finding],
        detail: String::new(),
        millis: 250,
        bytes_written: 65536,
    };
    write(
        &fdir.join("check.json"),
        &serde_json::to_string_pretty(&outcome).expect("json"),
    );
    write(
        &fdir.join("diff.txt"),
        &format!("{title}\npromised durable by op 2\n"),
    );
    write(
        &fdir.join("reproduce.sh"),
        "#!/bin/sh\n# Re-run the seed that produced this failure.\ncargo run --release -- campaign --mutant m5 --seeds 1..=1\n",
    );
    title
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
    let title = synthetic_run_dir(&run);
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
    assert!(dom.contains(&format!("id=\"f-{}\"", slug(&title))), "{dom}");
    assert!(dom.contains("cargo run --release -- campaign --mutant m5 --seeds 1..=1"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).expect("json"))
            .expect("report.json parses");
    assert_eq!(report["schema"], 2);
    assert_eq!(report["totals"]["failures"], 1);
    assert_eq!(report["seeds"].as_array().map(Vec::len), Some(3));
    assert_eq!(report["failures"][0]["title"], title.as_str());
    let xml = std::fs::read_to_string(&junit).expect("junit.xml");
    let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("junit parses");
    assert_eq!((parsed.tests, parsed.failures, parsed.errors), (3, 1, 1));
}
