//! A campaign SIGKILLed at random moments and resumed reports the same totals as an
//! uninterrupted one, loses no recorded result, and leaves no QEMU behind.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn campaign(out: &Path, resume: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_powercut"));
    c.args(["campaign", "--seeds", "1..4", "--output"]).arg(out);
    if resume {
        c.arg("--resume");
    }
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn totals(dir: &Path) -> serde_json::Value {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json"))
            .expect("JSON");
    let t = &report["totals"];
    serde_json::json!([
        t["seeds"],
        t["checks"],
        t["passed"],
        t["failures"],
        t["infra"]
    ])
}

#[test]
fn killed_and_resumed_campaign_matches_an_uninterrupted_one() {
    common::fixture();
    let base = tempfile::tempdir().expect("tempdir");
    let whole = base.path().join("whole");
    let cut = base.path().join("cut");
    let status = campaign(&whole, false).status().expect("campaign");
    assert_eq!(status.code(), Some(0));

    // Kill at two pseudo-random moments (fixed seed: reproducible), then let it finish.
    let mut lines_before_kill = Vec::new();
    for (i, secs) in [13u64, 21].into_iter().enumerate() {
        let mut child = campaign(&cut, i > 0).spawn().expect("spawn");
        std::thread::sleep(Duration::from_secs(secs));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            common::qemu_processes_with(&cut).is_empty(),
            "QEMU outlived a SIGKILLed harness"
        );
        lines_before_kill
            .push(std::fs::read_to_string(cut.join("journal.jsonl")).unwrap_or_default());
    }
    let status = campaign(&cut, true).status().expect("resume");
    let journal = std::fs::read_to_string(cut.join("journal.jsonl")).expect("journal");

    assert_eq!(status.code(), Some(0));
    assert_eq!(totals(&cut), totals(&whole));
    for before in lines_before_kill {
        assert!(
            journal.starts_with(before.trim_end_matches(|c| c != '\n')),
            "journal lost lines"
        );
    }
}
