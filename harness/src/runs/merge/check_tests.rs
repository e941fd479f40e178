//! Tests of the merge checks and the merged journal.

use super::*;
use crate::journal::events::CheckRecord;
use crate::records::finding::CrashLabel;
use workloads::oracle::{CrashPoint, Verdict};

fn info() -> RunInfo {
    crate::report::testdata::run_info("6.12", "abc", None)
}

fn header(shard: Option<Shard>) -> Event {
    Event::Journal {
        version: JOURNAL_VERSION,
        powercut: "0.1.0".into(),
        shard,
    }
}

/// A finished seed with one check of `verdict`.
fn seed_events(seed: u64, verdict: Verdict) -> Vec<Event> {
    let item = TrialItem::Seed(seed);
    vec![
        Event::SeedStarted { item: item.clone() },
        Event::RunDone {
            item: item.clone(),
            images: 1,
            boot_ms: 1,
            op_micros: 1,
            live_mismatch: None,
            phases: None,
        },
        Event::Checked(CheckRecord {
            item: item.clone(),
            at: CrashLabel {
                point: CrashPoint::AfterOp(1),
                kind: "fsync".into(),
            },
            model: "snapshot".into(),
            verdict,
            failure: None,
            problem: None,
            millis: 1,
            phases: None,
            same_as: None,
        }),
        Event::SeedDone { item },
    ]
}

fn source(dir: &str, shard: Option<&str>, seeds: &[u64]) -> Source {
    let shard: Option<Shard> = shard.map(|s| s.parse().expect("shard"));
    let mut events = vec![header(shard)];
    events.push(Event::Started {
        resumed: false,
        workers: 1,
        checkers: 1,
    });
    for s in seeds {
        events.extend(seed_events(*s, Verdict::Pass));
    }
    let kernels = vec![None; events.len()];
    Source {
        dir: dir.into(),
        config: CampaignConfig {
            shard,
            seeds: "1..5".into(),
            ..CampaignConfig::default()
        },
        info: info(),
        journal: JournalContents {
            events,
            kernels,
            valid_len: 0,
            torn: false,
        },
    }
}

fn refusal(sources: &[Source]) -> String {
    check(sources).expect_err("refused").0
}

#[test]
fn the_shards_of_one_split_merge_in_shard_order_and_missing_ones_are_named() {
    let two = source("b", Some("2/3"), &[1]);
    let one = source("a", Some("1/3"), &[2]);

    let (order, missing) = check(&[two, one]).expect("one campaign");

    assert_eq!(order, [1, 0]);
    assert_eq!(missing, ["3/3".parse::<Shard>().expect("shard")]);
}

#[test]
fn run_only_keys_may_differ_and_everything_else_is_named() {
    let a = source("a", Some("1/2"), &[2]);
    let mut b = source("b", Some("2/2"), &[1]);
    b.config.workers = crate::config::VmCount::Exactly(4);
    b.config.output = "elsewhere".into();
    b.info.accelerator = "kvm".into();
    let mut mutant = source("b", Some("2/2"), &[1]);
    mutant.config.mutant = Some("m5".into());
    let mut image = source("b", Some("2/2"), &[1]);
    image.info.image = "def".into();
    let mut kernel = source("b", Some("2/2"), &[1]);
    kernel.info.kernel = "6.1".into();

    assert!(check(&[a.clone(), b]).is_ok());
    let m = refusal(&[a.clone(), mutant]);
    let i = refusal(&[a.clone(), image]);
    let k = refusal(&[a, kernel]);

    assert!(
        m.contains("config.yaml `mutant` is null in a but m5 in b"),
        "{m}"
    );
    assert!(
        i.contains("run-info.json `image` is abc in a but def in b"),
        "{i}"
    );
    assert!(k.contains("`kernel` is 6.12 in a but 6.1 in b"), "{k}");
}

#[test]
fn a_shard_twice_another_split_or_a_whole_campaign_twice_is_refused() {
    let twice = refusal(&[
        source("a", Some("1/2"), &[2]),
        source("b", Some("1/2"), &[4]),
    ]);
    let split = refusal(&[
        source("a", Some("1/2"), &[2]),
        source("b", Some("2/3"), &[1]),
    ]);
    let mixed = refusal(&[source("a", Some("1/2"), &[2]), source("b", None, &[1])]);
    let whole = refusal(&[source("a", None, &[1]), source("b", None, &[2])]);

    assert!(
        twice.contains("shard 1/2 is given twice: a and b"),
        "{twice}"
    );
    assert!(split.contains("different splits"), "{split}");
    assert!(
        mixed.contains("b (shard none (the whole campaign))"),
        "{mixed}"
    );
    assert!(
        whole.contains("the whole campaign is given twice"),
        "{whole}"
    );
}

#[test]
fn an_item_in_two_directories_is_refused_naming_it_and_both() {
    let a = source("a", Some("1/2"), &[2, 4]);
    let b = source("b", Some("2/2"), &[1, 4]);

    let msg = refusal(&[a, b]);

    assert!(
        msg.contains("seed 4 ran in both a (shard 1/2) and b (shard 2/2)"),
        "{msg}"
    );
}

#[test]
fn a_journal_header_that_contradicts_the_config_is_refused() {
    let mut a = source("a", Some("1/2"), &[2]);
    a.journal.events[0] = header(Some("2/2".parse().expect("shard")));

    let msg = refusal(&[a]);

    assert!(
        msg.contains("a/journal.jsonl:1 records shard 2/2 but a/config.yaml shard 1/2"),
        "{msg}"
    );
}

#[test]
fn the_merged_journal_folds_to_the_sum_and_keeps_every_stop() {
    let a = source("a", Some("1/2"), &[2, 4]);
    let mut b = source("b", Some("2/2"), &[1, 3]);
    b.journal.events.push(Event::Stopped {
        reason: "interrupted".into(),
    });
    b.journal.kernels.push(None);
    let mut renames = vec![BTreeMap::new(); 2];
    renames[1].insert(
        "failures/x".to_owned(),
        "failures/x-shard-2-of-2".to_owned(),
    );
    b.journal.events.push(Event::FailureSaved {
        item: TrialItem::Seed(3),
        title: "t".into(),
        dir: "failures/x".into(),
        bucket: Some("x".into()),
    });
    b.journal.kernels.push(None);
    let sources = [a, b];

    let text = merged_journal(&sources, &[1, 0], &renames).expect("journal");
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("journal.jsonl");
    std::fs::write(&p, &text).expect("write");
    let contents = journal::read(&p).expect("a valid journal");
    let state = CampaignState::of(&contents.events);
    let t = state.totals(&[]);

    assert_eq!(contents.shard(), None);
    assert_eq!((t.seeds, t.checks, t.passed), (4, 4, 4));
    assert_eq!(
        state.stopped.as_deref(),
        Some("b (shard 2/2): interrupted"),
        "a later shard's start must not hide an earlier stop"
    );
    assert_eq!(state.failure_dir("x"), Some("failures/x-shard-2-of-2"));
}

#[test]
fn in_a_kernel_matrix_an_item_may_run_once_per_kernel() {
    let tag = |mut s: Source, k: &str| {
        for t in s.journal.kernels.iter_mut().skip(1) {
            *t = Some(k.to_owned());
        }
        s
    };
    let a = tag(source("a", Some("1/2"), &[1]), "6.1");
    let b = tag(source("b", Some("2/2"), &[1]), "6.12");
    let same = tag(source("b", Some("2/2"), &[1]), "6.1");

    let ok = check(&[a.clone(), b.clone()]);
    let msg = refusal(&[a.clone(), same]);
    let text = merged_journal(&[a, b], &[0, 1], &[]).expect("journal");

    assert!(ok.is_ok(), "{ok:?}");
    assert!(msg.contains("seed 1 on kernel 6.1 ran in both"), "{msg}");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(r#""kernel":"6.12""#))
            .count(),
        5,
        "every line of kernel 6.12 keeps its tag: {text}"
    );
}
