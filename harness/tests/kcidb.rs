//! `powercut report --kcidb` on the run directory of a real campaign (the stock kernel with
//! mutant m5, so the document has passing items and a failure bucket), validated by the
//! `kcidb-io` package's own schema validator (PyPI, installed by ci/setup into
//! `<cache>/kcidb-io-141`); a document broken on purpose must fail the same validator. The
//! campaign's summary ends with the fstests-style lines.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The kcidb-io version ci/setup installs (keep in step with `KCIDB_IO_VERSION` there).
const KCIDB_IO_VERSION: &str = "141";

/// The venv's python with kcidb-io: `POWERCUT_KCIDB_PYTHON`, else ci/setup's venv.
fn kcidb_python() -> PathBuf {
    if let Some(p) = std::env::var_os("POWERCUT_KCIDB_PYTHON") {
        return PathBuf::from(p);
    }
    let py = powercut::test_support::cache_root()
        .join(format!("kcidb-io-{KCIDB_IO_VERSION}"))
        .join("bin/python3");
    assert!(
        py.exists(),
        "{} is missing: run ci/setup (it installs kcidb-io {KCIDB_IO_VERSION} there)",
        py.display()
    );
    py
}

/// Validate `doc` with kcidb-io's schema v5.3 (`validate_exactly`: the document must say
/// major 5): Ok, or the validator's message.
fn kcidb_validate(doc: &Value) -> Result<(), String> {
    let script = "import json, sys\n\
                  import kcidb_io\n\
                  data = json.load(sys.stdin)\n\
                  kcidb_io.schema.V5_3.validate_exactly(data)\n\
                  print('valid')\n";
    let mut child = Command::new(kcidb_python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the kcidb-io validator");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(doc.to_string().as_bytes())
        .expect("write the document");
    let out = child.wait_with_output().expect("validator ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.starts_with("valid") {
        Ok(())
    } else {
        Err(text)
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

#[test]
fn kcidb_export_of_a_real_campaign_validates_with_kcidb_io() {
    common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let spec = workspace_root().join("workloads/specs/mmap-store-fsync.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_powercut"))
        .args([
            "campaign",
            "--accel",
            "auto",
            "--output",
            &run.to_string_lossy(),
            "--seeds",
            "1..2",
            "--mutant",
            "m5",
            "--workload",
            &spec.to_string_lossy(),
        ])
        .output()
        .expect("run powercut campaign");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "m5 is caught: {text}");
    let tail: Vec<&str> = stdout.lines().rev().take(2).collect();
    assert!(
        tail.len() == 2
            && tail[0].starts_with("Failed ")
            && tail[0].ends_with(" tests")
            && tail[1].starts_with("Failures: ")
            && tail[1].contains("workload/mmap-store-fsync"),
        "the summary ends with fstests-style lines: {text}"
    );
    let file = dir.path().join("kcidb.json");

    let (code, out) = common::powercut(&[
        "report",
        "--kcidb",
        &file.to_string_lossy(),
        &run.to_string_lossy(),
    ]);

    assert_eq!(code, 0, "{out}");
    let doc: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("kcidb.json")).expect("JSON");
    kcidb_validate(&doc).expect("the export is valid KCIDB");
    let tests = doc["tests"].as_array().expect("tests");
    let status_of = |path_prefix: &str, status: &str| {
        tests.iter().any(|t| {
            t["path"]
                .as_str()
                .is_some_and(|p| p.starts_with(path_prefix))
                && t["status"] == status
        })
    };
    assert!(
        status_of("powercut.ext4.snapshot.", "FAIL"),
        "a bucket test fails: {doc}"
    );
    assert!(
        tests
            .iter()
            .any(|t| t["path"] == "powercut.ext4.snapshot" && t["status"] == "FAIL"),
        "the m5 workload's item fails: {doc}"
    );
    assert_eq!(doc["builds"].as_array().map(Vec::len), Some(1));

    // The same validator rejects a broken document: an id outside any origin's namespace,
    // a status KCIDB does not know, a path with a space.
    for (field, bad) in [
        ("id", Value::from("no-origin-prefix")),
        ("status", Value::from("BROKEN")),
        ("path", Value::from("powercut.ext4 snapshot")),
    ] {
        let mut broken = doc.clone();
        broken["tests"][0][field] = bad;
        assert!(
            kcidb_validate(&broken).is_err(),
            "kcidb-io accepted a test with a bad {field}"
        );
    }
    let mut wrong_major = doc.clone();
    wrong_major["version"]["major"] = Value::from(4);
    assert!(kcidb_validate(&wrong_major).is_err());
}
