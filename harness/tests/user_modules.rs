//! The user's own modules (`--module`) through the `powercut` binary: a module built in the
//! test from a C source directory with a Kbuild file is loaded in the workload VM (its
//! message is on the guest console) and recorded with its sha256 in `run-info.json` and
//! `report.json`; the same module refusing to load (its `module_init` returns -EINVAL)
//! gives an infrastructure verdict quoting the guest's kernel log, never a pass.

mod common;

use std::path::Path;
use std::process::Command;

/// A module whose init logs at error level (so it reaches the console) and fails with
/// -EINVAL when `answer` is negative.
const TEST_MODULE_C: &str = r#"
#include <linux/module.h>
#include <linux/moduleparam.h>

static int answer = 42;
module_param(answer, int, 0444);

static int __init pc_test_init(void)
{
	if (answer < 0) {
		pr_err("pc_test_mod: answer must be >= 0, got %d\n", answer);
		return -EINVAL;
	}
	pr_err("pc_test_mod: loaded with answer=%d\n", answer);
	return 0;
}

static void __exit pc_test_exit(void)
{
}

module_init(pc_test_init);
module_exit(pc_test_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("powercut test module");
"#;

fn module_source(dir: &Path) -> String {
    let src = dir.join("pc-test-src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("pc_test_mod.c"), TEST_MODULE_C).expect("write .c");
    std::fs::write(src.join("Kbuild"), "obj-m := pc_test_mod.o\n").expect("write Kbuild");
    src.to_string_lossy().into_owned()
}

fn campaign(out: &Path, module: &str) -> (i32, String) {
    let out = out.to_string_lossy().into_owned();
    let output = Command::new(env!("CARGO_BIN_EXE_powercut"))
        .args(["campaign", "--seeds", "1..=1", "--output", &out])
        .args(["--module", module])
        .output()
        .expect("run powercut");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON")
}

#[test]
fn a_module_built_from_source_is_loaded_and_recorded() {
    common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let src = module_source(dir.path());
    let run = dir.path().join("run");

    let (code, text) = campaign(&run, &format!("{src} answer=7"));

    assert_eq!(code, 0, "{text}");
    let console =
        std::fs::read_to_string(run.join("seeds/1/work-1.console.log")).expect("console log");
    assert!(
        console.contains("pc_test_mod: loaded with answer=7"),
        "{console}"
    );
    let info = json(&run.join("run-info.json"));
    let report = json(&run.join("report.json"));
    for modules in [&info["modules"], &report["modules"]] {
        assert_eq!(modules[0]["name"], "pc_test_mod", "{modules}");
        assert_eq!(modules[0]["args"][0], "answer=7", "{modules}");
        let sha = modules[0]["sha256"].as_str().expect("sha256");
        assert!(
            sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{sha}"
        );
    }
}

#[test]
fn a_module_that_fails_to_load_is_an_infrastructure_verdict_quoting_dmesg() {
    common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let src = module_source(dir.path());
    let run = dir.path().join("run");

    let (code, text) = campaign(&run, &format!("{src} answer=-1"));

    assert_eq!(code, 69, "{text}");
    let report = json(&run.join("report.json"));
    assert_eq!(report["totals"]["failures"], 0, "{report}");
    assert_eq!(report["totals"]["passed"], 0, "{report}");
    let problems = report["totals"]["infra_problems"].to_string();
    assert!(
        problems.contains("boot-failed")
            && problems.contains("module pc_test_mod failed to load")
            && problems.contains("pc_test_mod: answer must be >= 0, got -1"),
        "{problems}"
    );
}

#[test]
fn a_module_for_another_kernel_or_not_a_module_is_refused_before_any_vm_boots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_elf = dir.path().join("x.ko");
    std::fs::write(&not_elf, "text").expect("write");
    let run = dir.path().join("run");

    let (code, text) = campaign(&run, &not_elf.to_string_lossy());

    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("field `modules`") && text.contains("not an ELF file"),
        "{text}"
    );
}
