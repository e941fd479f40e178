//! A small synthetic run for the report unit tests: five seeds covering every seed status
//! (a failure with a failure directory, a pass, an infrastructure problem, a suppressed known
//! bug, an unfinished seed), with markup in a file name to exercise escaping.

use std::collections::BTreeMap;

use workloads::oracle::{AllowedVersion, Finding, Verdict};
use workloads::{Op, Workload};

use super::rundir::{ConsoleTail, FailureDir, RunData, RunInfo};
use crate::campaign::config::CampaignConfig;
use crate::campaign::journal::JournalEntry;
use crate::campaign::CheckRecord;
use crate::checker::CheckOutcome;

/// The file name of the synthetic workloads (markup on purpose).
pub const FILE: &str = "f<0>";
/// Title of seed 1's failure.
pub const TITLE: &str = "data-loss: f<0> [0..8) after op 2 (fsync)";
/// Its failure directory.
pub const SLUG: &str = "data-loss-f-0-0-8-after-op-2-fsync";

fn check(seed: u64, point: &str, verdict: Verdict, title: Option<&str>) -> JournalEntry {
    JournalEntry::Check(CheckRecord {
        seed,
        point: point.into(),
        verdict,
        title: title.map(str::to_owned),
        millis: 100,
        suppressed: false,
    })
}

fn workload(seed: u64) -> Workload {
    let file = FILE.to_owned();
    Workload {
        name: format!("seed-{seed}"),
        seed,
        profile: Some("smoke".into()),
        ops: vec![
            Op::Create { file: file.clone() },
            Op::Pwrite {
                file: file.clone(),
                off: 0,
                len: 8,
                pattern: None,
            },
            Op::Fsync { file },
        ],
    }
}

/// The data-loss finding of seed 1.
pub fn finding() -> Finding {
    Finding {
        verdict: Verdict::DataLoss,
        file: FILE.into(),
        start: 0,
        end: 8,
        expected: vec![AllowedVersion {
            op: Some(1),
            bytes: vec![0x5a; 8],
        }],
        found: vec![0x5a, 0x5a, 0x5a, 0, 0, 0x5a, 0x5a, 0x5a],
        allowed_sizes: None,
        found_size: Some(8),
        promised_by: Some(2),
        at: "after op 2 (fsync)".into(),
    }
}

/// The synthetic run.
pub fn synthetic_run() -> RunData {
    let started = |seed| JournalEntry::SeedStarted { seed };
    let done = |seed, infra: Option<&str>| JournalEntry::SeedDone {
        seed,
        infra: infra.map(str::to_owned),
    };
    let known = "size-loss: f9 size 0, allowed 4096 after op 2 (fsync)";
    let entries = vec![
        started(1),
        check(1, "after op 0 (create)", Verdict::Pass, None),
        check(1, "inside op 1 (pwrite)", Verdict::Pass, None),
        check(1, "after op 2 (fsync)", Verdict::DataLoss, Some(TITLE)),
        done(1, None),
        started(2),
        check(2, "after op 2 (fsync)", Verdict::Pass, None),
        done(2, None),
        started(3),
        done(3, Some("seed 3: boot-failed: QEMU died")),
        started(4),
        check(4, "after op 2 (fsync)", Verdict::SizeLoss, Some(known)),
        done(4, None),
        started(5),
        check(5, "after op 0 (create)", Verdict::Pass, None),
    ];
    let workloads: BTreeMap<u64, Workload> = [1, 2, 4, 5].map(|s| (s, workload(s))).into();
    let console = ConsoleTail {
        path: "seeds/1/work-1.console.log".into(),
        tail: "[    1.0] EXT4-fs (pmem0): mounted filesystem\n[    2.0] powercut-agent: ready"
            .into(),
    };
    let failure = FailureDir {
        slug: SLUG.into(),
        title: TITLE.into(),
        point: Some("after op 2 (fsync)".into()),
        seed: Some(1),
        outcome: Some(CheckOutcome {
            verdict: Verdict::DataLoss,
            findings: vec![finding()],
            detail: String::new(),
            millis: 100,
            bytes_written: 4096,
        }),
        diff: format!(
            "{TITLE}\npromised durable by op 2\nexpected (written by op 1):\n  00000000: 5a 5a 5a 5a 5a 5a 5a 5a\n"
        ),
        reproduce: Some("cargo run --release -- campaign --mutant m5 --seeds 1..=1".into()),
        console: None,
    };
    RunData {
        name: "campaign-synthetic".into(),
        config: CampaignConfig {
            mutant: Some("m5".into()),
            suppressions: vec!["^size-loss: f9 ".into()],
            ..CampaignConfig::default()
        },
        info: Some(RunInfo {
            powercut: "0.1.0".into(),
            rng: workloads::generator::RNG.into(),
            kernel: "6.12.95+deb12-amd64".into(),
            image: "fd15f05972f0418e".into(),
            accelerator: "tcg".into(),
        }),
        entries,
        workloads,
        consoles: [(1, console)].into(),
        failures: vec![failure],
        notes: Vec::new(),
    }
}
