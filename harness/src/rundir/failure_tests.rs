//! Tests of failure directories: writing, reading back, slugs, instances, old schemas.

use super::*;
use workloads::oracle::CrashPoint;
use workloads::Op;

fn record(title: &str) -> FailureRecord {
    FailureRecord {
        schema: FAILURE_SCHEMA,
        title: title.into(),
        verdict: Verdict::MissingFile,
        signature: Signature {
            verdict: Verdict::MissingFile,
            file: Some("f0".into()),
            inside: false,
            kind: "fsync".into(),
        },
        bucket: None,
        crash: CrashLabel {
            point: CrashPoint::AfterOp(1),
            kind: "fsync".into(),
        },
        crash_model: "snapshot".into(),
        seed: 7,
        workload: None,
        filesystem: "ext4".into(),
        mutant: Some("m5".into()),
        modules: Vec::new(),
        reproduce: "cargo run --release -- campaign --seeds 7..=7".into(),
        cache_cut: None,
        kernel: None,
    }
}

fn workload() -> Workload {
    Workload {
        name: "t".into(),
        seed: 7,
        profile: None,
        ops: vec![Op::create("f0"), Op::Fsync { file: "f0".into() }],
    }
}

/// A workload's expectation at its fsync, a missing-file outcome, and a console log.
struct Inputs {
    first: Instance,
    workload: Workload,
    exp: Expectation,
    outcome: CheckOutcome,
    console: PathBuf,
}

fn inputs(dir: &Path) -> Inputs {
    let console = dir.join("work-7.console.log");
    std::fs::write(&console, "boot\n").expect("console");
    let workload = workload();
    let exp = workloads::oracle::expectation(
        &workload,
        &[],
        CrashPoint::AfterOp(1),
        &workloads::oracle::FsRules::ext4(),
    );
    Inputs {
        first: Instance {
            item: TrialItem::Seed(7),
            at: CrashLabel {
                point: CrashPoint::AfterOp(1),
                kind: "fsync".into(),
            },
            model: "snapshot".into(),
            verdict: Verdict::MissingFile,
            title: "missing-file: f0 after op 1 (fsync)".into(),
            bucket: "missing-file of name".into(),
        },
        workload,
        exp,
        outcome: CheckOutcome {
            verdict: Verdict::MissingFile,
            findings: Vec::new(),
            detail: String::new(),
            millis: 3,
            bytes_written: 0,
            phases: Default::default(),
            same_as: None,
        },
        console,
    }
}

fn new_failure<'a>(r: &'a FailureRecord, i: &'a Inputs) -> NewFailure<'a> {
    NewFailure {
        record: r,
        workload: &i.workload,
        expectation: &i.exp,
        outcome: &i.outcome,
        console: &i.console,
        image: None,
        lost_lines: None,
        first: &i.first,
        lost_report: None,
    }
}

#[test]
fn a_failure_directory_reads_back_as_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path());
    let i = inputs(dir.path());
    let r = record("missing-file: f0 after op 1 (fsync)");

    let rel = write(&run, &new_failure(&r, &i)).expect("write");
    let back = FailureDir::load(&dir.path().join(&rel)).expect("load");

    assert_eq!(rel, "failures/missing-file-f0-after-op-1-fsync");
    assert_eq!(back.record, r);
    assert_eq!(
        read_instances(&dir.path().join(&rel)),
        (vec![i.first.clone()], 0)
    );
    assert_eq!(back.workload.ops.len(), 2);
    assert!(back.console.is_some());
    assert_eq!(
        back.run_dir().map(|d| d.root().to_owned()),
        Some(dir.path().to_owned())
    );
}

#[test]
fn two_titles_with_one_slug_get_two_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path());
    let i = inputs(dir.path());
    let (a, b) = (
        record("missing-file: f0 (x)"),
        record("missing-file: f0 [x]"),
    );

    let da = write(&run, &new_failure(&a, &i)).expect("a");
    let db = write(&run, &new_failure(&b, &i)).expect("b");

    assert_ne!(da, db);
    assert!(db.ends_with("-2"), "{db}");
}

#[test]
fn one_bucket_on_two_matrix_kernels_keeps_both_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path());
    let i = inputs(dir.path());
    let on = |k: &str| FailureRecord {
        kernel: Some(k.into()),
        ..record("missing-file: f0 after op 1 (fsync)")
    };
    let (a, b) = (on("suite:sid"), on("6.1.0-50-amd64"));

    let da = write(&run, &new_failure(&a, &i)).expect("a");
    let db = write(&run, &new_failure(&b, &i)).expect("b");
    let again = write(&run, &new_failure(&a, &i)).expect("a again");

    assert_eq!(da, "failures/suite-sid-missing-file-f0-after-op-1-fsync");
    assert_eq!(
        db,
        "failures/6-1-0-50-amd64-missing-file-f0-after-op-1-fsync"
    );
    assert_eq!(
        again, da,
        "a re-written directory of the same kernel replaces its own"
    );
    for (rel, r) in [(&da, &a), (&db, &b)] {
        let back = FailureDir::load(&dir.path().join(rel)).expect("both still there");
        assert_eq!(&back.record, r);
    }
}

#[test]
fn a_directory_whose_crash_point_names_another_op_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = record("missing-file: f0 after op 0 (fsync)");
    r.crash.point = CrashPoint::AfterOp(0);
    std::fs::write(
        dir.path().join(FAILURE_JSON),
        serde_json::to_string(&r).expect("json"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join(WORKLOAD),
        serde_yaml::to_string(&workload()).expect("yaml"),
    )
    .expect("write");

    let err = FailureDir::load(dir.path()).expect_err("mixed");

    assert!(err.to_string().contains("mixes two failures"), "{err}");
}

#[test]
fn instances_append_and_a_rewrite_replaces_a_torn_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path());
    let i = inputs(dir.path());
    let r = record("missing-file: f0 after op 1 (fsync)");
    let rel = write(&run, &new_failure(&r, &i)).expect("write");
    let mut second = i.first.clone();
    second.item = TrialItem::Workload("w".into());

    append_instance(&run, &rel, &second).expect("append");
    let appended = read_instances(&dir.path().join(&rel));
    std::fs::write(dir.path().join(&rel).join(INSTANCES), "{\"seed\":7,\"at\":").expect("tear");
    let torn = read_instances(&dir.path().join(&rel));
    write_instances(&run, &rel, &[i.first.clone(), second.clone()]).expect("rewrite");
    let rewritten = read_instances(&dir.path().join(&rel));

    assert_eq!(appended, (vec![i.first.clone(), second.clone()], 0));
    assert_eq!(torn, (vec![], 1));
    assert_eq!(rewritten, (vec![i.first.clone(), second], 0));
}

#[test]
fn schema_1_directories_still_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = record("missing-file: f0 after op 1 (fsync)");
    r.schema = 1;
    let mut json = serde_json::to_value(&r).expect("json");
    json.as_object_mut().expect("object").remove("workload");
    std::fs::write(dir.path().join(FAILURE_JSON), json.to_string()).expect("write");
    std::fs::write(
        dir.path().join(WORKLOAD),
        serde_yaml::to_string(&workload()).expect("yaml"),
    )
    .expect("write");

    let back = FailureDir::load(dir.path()).expect("schema 1 reads");

    assert_eq!(back.record.item(), TrialItem::Seed(7));
    assert_eq!(back.record.bucket_id(), r.title);
}
