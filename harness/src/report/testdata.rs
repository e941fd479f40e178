//! A small synthetic run for the report unit tests: five seeds covering every seed status
//! (a failure with a failure directory, a pass, an infrastructure problem, a suppressed known
//! bug, an unfinished seed) and a workload file whose failure falls into seed 1's bucket,
//! with markup in a file name to exercise escaping.

use std::collections::BTreeMap;

use workloads::oracle::{AllowedVersion, Finding, Verdict};
use workloads::{Op, Workload};

use crate::config::CampaignConfig;
use crate::journal::events::{CheckRecord, Event};
use crate::journal::fold::CampaignState;
use crate::records::bucket::{Bucket, Lost};
use crate::records::finding::{CrashLabel, Failure, Signature};
use crate::records::item::TrialItem;
use crate::records::CheckOutcome;
use crate::rundir::failure::{FailureDir, FailureRecord, FAILURE_SCHEMA};
use crate::rundir::RunInfo;
use crate::runs::read::{ConsoleTail, RunData};
use workloads::oracle::CrashPoint;

/// The file name of the synthetic workloads (markup on purpose).
pub const FILE: &str = "f<0>";
/// Title of seed 1's failure.
pub const TITLE: &str = "data-loss: f<0> [0..8) after op 2 (fsync)";
/// Its bucket id.
pub const BUCKET: &str = "data-loss of pwrite_data promised by fsync (snapshot, ext4, m5)";
/// Its failure directory.
pub const SLUG: &str = "data-loss-of-pwrite-data-promised-by-fsync-snapshot-ext4-m5";
/// The workload input of the synthetic run.
pub const WORKLOAD_NAME: &str = "pwrite-fsync";

fn bucket(verdict: Verdict) -> Bucket {
    Bucket {
        verdict,
        promise: Some("fsync".into()),
        lost: if verdict == Verdict::DataLoss {
            Lost::PwriteData
        } else {
            Lost::Size
        },
        after: Vec::new(),
        via: Vec::new(),
        crash_model: "snapshot".into(),
        filesystem: "ext4".into(),
        mutant: Some("m5".into()),
        modules: Vec::new(),
    }
}

fn label(point: &str) -> CrashLabel {
    let (when, rest) = point.split_once(" op ").expect("label");
    let (k, kind) = rest.split_once(' ').expect("label");
    let k: usize = k.parse().expect("op");
    CrashLabel {
        point: if when == "after" {
            CrashPoint::AfterOp(k)
        } else {
            CrashPoint::InsideOp(k)
        },
        kind: kind.trim_matches(|c| c == '(' || c == ')').into(),
    }
}

fn check(seed: u64, point: &str, verdict: Verdict, title: Option<&str>) -> Event {
    check_item(TrialItem::Seed(seed), point, verdict, title)
}

fn check_item(item: TrialItem, point: &str, verdict: Verdict, title: Option<&str>) -> Event {
    let at = label(point);
    Event::Checked(CheckRecord {
        item,
        failure: title.map(|t| Failure {
            verdict,
            title: t.into(),
            signature: Signature {
                verdict,
                file: Some(FILE.into()),
                inside: at.inside(),
                kind: at.kind.clone(),
            },
            bucket: Some(Box::new(bucket(verdict))),
        }),
        at,
        model: "snapshot".into(),
        verdict,
        problem: None,
        millis: 100,
        phases: None,
        same_as: None,
    })
}

fn ran(seed: TrialItem, images: usize) -> Event {
    Event::RunDone {
        item: seed,
        images,
        boot_ms: 6000,
        op_micros: 900,
        live_mismatch: None,
        phases: None,
    }
}

fn workload(seed: u64) -> Workload {
    let file = FILE.to_owned();
    Workload {
        name: format!("seed-{seed}"),
        seed,
        profile: Some("smoke".into()),
        ops: vec![
            Op::create(file.clone()),
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
        meta: None,
    }
}

/// The synthetic run.
pub fn synthetic_run() -> RunData {
    let started = |seed| Event::SeedStarted {
        item: TrialItem::Seed(seed),
    };
    let done = |seed| Event::SeedDone {
        item: TrialItem::Seed(seed),
    };
    let w = TrialItem::Workload(WORKLOAD_NAME.into());
    let known = "size-loss: f9 size 0, allowed 4096 after op 2 (fsync)";
    let events = vec![
        Event::Journal {
            version: crate::journal::events::JOURNAL_VERSION,
            powercut: "0.1.0".into(),
            shard: None,
        },
        started(1),
        ran(TrialItem::Seed(1), 3),
        check(1, "after op 0 (create)", Verdict::Pass, None),
        check(1, "inside op 1 (pwrite)", Verdict::Pass, None),
        check(1, "after op 2 (fsync)", Verdict::DataLoss, Some(TITLE)),
        Event::FailureSaved {
            item: TrialItem::Seed(1),
            title: TITLE.into(),
            dir: format!("failures/{SLUG}"),
            bucket: Some(BUCKET.into()),
        },
        done(1),
        started(2),
        ran(TrialItem::Seed(2), 1),
        check(2, "after op 2 (fsync)", Verdict::Pass, None),
        done(2),
        started(3),
        Event::RunFailed {
            item: TrialItem::Seed(3),
            verdict: Verdict::BootFailed,
            problem: "QEMU died".into(),
        },
        done(3),
        started(4),
        ran(TrialItem::Seed(4), 1),
        check(4, "after op 2 (fsync)", Verdict::SizeLoss, Some(known)),
        done(4),
        Event::SeedStarted { item: w.clone() },
        ran(w.clone(), 1),
        check_item(
            w.clone(),
            "after op 2 (fsync)",
            Verdict::DataLoss,
            Some("data-loss: f<0> [0..4) after op 2 (fsync)"),
        ),
        Event::SeedDone { item: w.clone() },
        started(5),
        check(5, "after op 0 (create)", Verdict::Pass, None),
    ];
    let mut workloads: BTreeMap<TrialItem, Workload> = [1, 2, 4, 5]
        .map(|s| (TrialItem::Seed(s), workload(s)))
        .into();
    workloads.insert(w.clone(), workload(7));
    let console = ConsoleTail {
        path: "seeds/1/work-1.console.log".into(),
        tail: "[    1.0] EXT4-fs (pmem0): mounted filesystem\n[    2.0] powercut-agent: ready"
            .into(),
    };
    let at = label("after op 2 (fsync)");
    let failure = FailureDir {
        dir: format!("/runs/campaign-synthetic/failures/{SLUG}").into(),
        record: FailureRecord {
            schema: FAILURE_SCHEMA,
            title: TITLE.into(),
            verdict: Verdict::DataLoss,
            signature: Signature {
                verdict: Verdict::DataLoss,
                file: Some(FILE.into()),
                inside: false,
                kind: "fsync".into(),
            },
            bucket: Some(bucket(Verdict::DataLoss)),
            crash: at,
            crash_model: "snapshot".into(),
            seed: 1,
            workload: None,
            filesystem: "ext4".into(),
            mutant: Some("m5".into()),
            modules: Vec::new(),
            reproduce: "cargo run --release -- campaign --mutant m5 --seeds 1..=1".into(),
            cache_cut: None,
            kernel: None,
        },
        workload: workload(1),
        outcome: Some(CheckOutcome {
            verdict: Verdict::DataLoss,
            findings: vec![finding()],
            detail: String::new(),
            millis: 100,
            bytes_written: 4096,
            phases: Default::default(),
            same_as: None,
        }),
        diff: format!(
            "{TITLE}\npromised durable by op 2\nexpected (written by op 1):\n  00000000: 5a 5a 5a 5a 5a 5a 5a 5a\n"
        ),
        console: None,
        lost: None,
    };
    RunData {
        name: "campaign-synthetic".into(),
        config: CampaignConfig {
            mutant: Some("m5".into()),
            suppressions: vec!["^size-loss: f9 ".into()],
            ..CampaignConfig::default()
        },
        info: Some(run_info("6.12.95+deb12-amd64", "fd15f05972f0418e", None)),
        state: CampaignState::of(&events),
        workloads,
        workload_files: [(
            WORKLOAD_NAME.to_owned(),
            "specs/pwrite-fsync.yaml".to_owned(),
        )]
        .into(),
        consoles: [(TrialItem::Seed(1), console)].into(),
        failures: vec![failure],
        failure_consoles: BTreeMap::new(),
        notes: Vec::new(),
        kernel: None,
        kernel_log: Default::default(),
        coverage: Vec::new(),
        coverage_diff: Vec::new(),
    }
}

/// The `run-info.json` of a restored TCG campaign on `kernel` with `image` (test runs).
pub fn run_info(kernel: &str, image: &str, shard: Option<crate::config::shard::Shard>) -> RunInfo {
    RunInfo {
        powercut: "0.1.0".into(),
        rng: workloads::generator::RNG.into(),
        kernel: kernel.into(),
        image: image.into(),
        accelerator: "tcg".into(),
        start: "restore".into(),
        restore_fallback: None,
        modules: vec![],
        kernels: vec![],
        shard,
        merged: vec![],
    }
}
