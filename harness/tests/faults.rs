//! Fault injection against `powercut campaign`, black-box through the binary: the engine
//! loses nothing and hides nothing. A corrupted journal line is refused with its line
//! number; a torn last line is not an error; a workload VM or checker VM killed, an SSH
//! connection cut, a full disk each end in an infrastructure verdict (exit 69) with no QEMU
//! and no crash image left behind; a harness SIGKILLed at seeded moments and resumed each
//! time reports what an uninterrupted run reports.
//!
//! Every campaign here runs 1–2 smoke seeds with one workload VM and one checker VM (the
//! full-disk one lists 20 seeds to show that it stops within the first). The
//! m5 campaign (`--mutant m5`, seeds 1..3 and one workload file: durability failures,
//! exit 1) is run once and shared: the journal tests corrupt copies of its run directory, the kill test compares
//! against it. `POWERCUT_FAULT_KILLS` sets the number of kills (default 3; `ci/soak` uses 20).

mod common;
#[path = "common/faults.rs"]
mod kit;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use kit::{Campaign, FaultConfig, Tmpfs, CAMPAIGN_TIMEOUT};
use rand::{Rng, SeedableRng};

/// Exit code of a campaign that found a durability failure.
const EXIT_FAILURE: i32 = 1;
/// Exit code of bad usage or input (including a journal with a bad line).
const EXIT_USAGE: i32 = 2;
/// Exit code of an infrastructure problem.
const EXIT_INFRA: i32 = 69;

/// Seed of the RNG that picks the moments at which the harness is SIGKILLed, when
/// `POWERCUT_FAULT_KILL_SEED` is not set (`ci/soak` sets it to cover other moments).
const DEFAULT_KILL_SEED: u64 = 0x0070_6f77_6572_6375;
/// The harness is SIGKILLed this fraction (uniformly drawn) of the uninterrupted m5
/// campaign's time after it started: from before the journal exists (the first ≈ 1 s of
/// the ≈ 55 s it takes here) to its last checks.
const KILL_FRACTION: std::ops::Range<f64> = 0.01..1.0;
/// Kills when `POWERCUT_FAULT_KILLS` is not set.
const DEFAULT_KILLS: usize = 3;

/// Twenty smoke seeds take about 400 s here (one worker, TCG); a campaign that stops at
/// the first failing write ends within its first seed (≈ 25 s).
const FULL_DISK_DEADLINE: Duration = Duration::from_secs(120);

/// The shared m5 campaign: its config, run directory and how it ended.
struct M5Run {
    config: PathBuf,
    dir: PathBuf,
    code: Option<i32>,
    output: String,
    elapsed: Duration,
}

/// `--mutant m5`, seeds 1..3 and the workload file `create-fsync-fsync-dir.yaml` (so kills
/// and resumes meet both kinds of item), crash points after durability ops only (inside-op
/// points depend on timing, so two runs would not match).
fn m5_config() -> FaultConfig {
    FaultConfig {
        mutant: Some("m5"),
        workloads: &["workloads/specs/create-fsync-fsync-dir.yaml"],
        ..FaultConfig::smoke("1..3")
    }
}

/// Run the m5 campaign once per test binary (under `CARGO_TARGET_TMPDIR`, replaced each
/// time) and share it.
fn m5_run() -> &'static M5Run {
    static RUN: OnceLock<M5Run> = OnceLock::new();
    RUN.get_or_init(|| {
        common::fixture();
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-m5");
        match std::fs::remove_dir_all(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("fixture: removing {}: {e}", root.display()),
        }
        std::fs::create_dir_all(&root).expect("fixture: create the m5 root");
        let config = m5_config().write(&root.join("m5.yaml"));
        let dir = root.join("run");
        let ended = Campaign::run(&config, &dir, false, &root.join("campaign.log"));
        M5Run {
            config,
            dir,
            code: ended.code,
            output: ended.output,
            elapsed: ended.elapsed,
        }
    })
}

/// A copy of the m5 run directory in `parent`.
fn m5_copy(parent: &Path) -> PathBuf {
    let copy = parent.join("run");
    kit::copy_run_dir(&m5_run().dir, &copy);
    copy
}

/// Replace journal line `n` (1-based) by its first half: a torn write that later lines
/// were appended after. Returns the line count.
fn tear_line(journal: &Path, n: usize) -> usize {
    let text = std::fs::read_to_string(journal).expect("read journal");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let line = &mut lines[n - 1];
    let mut half = line.len() / 2;
    while !line.is_char_boundary(half) {
        half -= 1;
    }
    line.truncate(half);
    std::fs::write(journal, lines.join("\n") + "\n").expect("write journal");
    lines.len()
}

/// A middle line of the journal: neither the first (the header) nor the last.
fn middle_line(journal: &Path) -> usize {
    let count = std::fs::read_to_string(journal)
        .expect("read journal")
        .lines()
        .count();
    count / 2 + 1
}

/// The first `n` lines of a journal, newlines included.
fn first_lines(journal: &[u8], n: usize) -> Vec<u8> {
    let end = journal
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(n - 1)
        .map_or(journal.len(), |(i, _)| i + 1);
    journal[..end].to_vec()
}

/// The bytes an engine was writing when the power went: a copy of the last event with a
/// non-ASCII string added (a path, a console line), cut inside the 3-byte `—`. No newline.
fn torn_utf8_event(journal: &[u8]) -> Vec<u8> {
    let complete = kit::complete_lines(journal);
    let last = complete[..complete.len() - 1]
        .rsplit(|&b| b == b'\n')
        .next()
        .expect("a last line");
    let mut event: serde_json::Value = serde_json::from_slice(last).expect("last line is JSON");
    event["note"] = serde_json::Value::from("power cut — mid-write");
    let text = serde_json::to_string(&event).expect("serialize");
    let dash = text.find('—').expect("the dash");
    text.as_bytes()[..dash + 2].to_vec()
}

/// A number from the environment (decimal, or hex with `0x`); `None` if unset.
fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={v}: {e}")))
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn report_refuses_a_journal_with_a_bad_middle_line_and_names_it() {
    let m5 = m5_run();
    assert_eq!(m5.code, Some(EXIT_FAILURE), "m5 campaign: {}", m5.output);
    let work = tempfile::tempdir().expect("tempdir");
    let dir = m5_copy(work.path());
    let journal = dir.join("journal.jsonl");
    let bad = middle_line(&journal);
    let lines = tear_line(&journal, bad);

    let (code, text) = kit::powercut(&[os("report"), dir.as_os_str()]);

    assert!(
        1 < bad && bad < lines,
        "line {bad} of {lines} is not a middle line"
    );
    assert_eq!(code, Some(EXIT_USAGE), "{text}");
    assert!(text.contains(&format!("journal.jsonl:{bad}")), "{text}");
}

#[test]
fn resume_refuses_a_journal_with_a_bad_middle_line_and_names_it() {
    let m5 = m5_run();
    assert_eq!(m5.code, Some(EXIT_FAILURE), "m5 campaign: {}", m5.output);
    let work = tempfile::tempdir().expect("tempdir");
    let dir = m5_copy(work.path());
    let journal = dir.join("journal.jsonl");
    let bad = middle_line(&journal);
    tear_line(&journal, bad);
    let before = kit::journal_bytes(&dir);

    let ended = Campaign::run(&m5.config, &dir, true, &work.path().join("resume.log"));

    assert_eq!(ended.code, Some(EXIT_USAGE), "{}", ended.output);
    assert!(
        ended.output.contains(&format!("journal.jsonl:{bad}")),
        "{}",
        ended.output
    );
    assert!(
        kit::journal_bytes(&dir) == before,
        "the refused journal was changed"
    );
    assert!(common::qemu_processes_with(&dir).is_empty());
}

#[test]
fn report_ignores_a_last_line_torn_inside_a_utf8_character() {
    let m5 = m5_run();
    assert_eq!(m5.code, Some(EXIT_FAILURE), "m5 campaign: {}", m5.output);
    let whole = kit::report(&m5.dir);
    let work = tempfile::tempdir().expect("tempdir");
    let dir = m5_copy(work.path());
    let mut journal = kit::journal_bytes(&dir);
    journal.extend(torn_utf8_event(&journal));
    std::fs::write(dir.join("journal.jsonl"), &journal).expect("write torn journal");

    let (code, text) = kit::powercut(&[os("report"), dir.as_os_str()]);
    let rebuilt = kit::report(&dir);

    assert!(
        std::str::from_utf8(&journal).is_err(),
        "the tear is not inside a character"
    );
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(kit::totals(&rebuilt), kit::totals(&whole));
    assert_eq!(kit::failure_titles(&rebuilt), kit::failure_titles(&whole));
}

#[test]
fn resume_continues_after_a_last_line_torn_inside_a_utf8_character() {
    let m5 = m5_run();
    assert_eq!(m5.code, Some(EXIT_FAILURE), "m5 campaign: {}", m5.output);
    let whole = kit::report(&m5.dir);
    let work = tempfile::tempdir().expect("tempdir");
    let dir = m5_copy(work.path());
    // The harness died writing the line after the middle one: the seeds not finished by
    // then are redone, so the resumed run appends after the torn line.
    let journal = dir.join("journal.jsonl");
    let head = first_lines(&kit::journal_bytes(&dir), middle_line(&journal));
    let mut torn = head.clone();
    torn.extend(torn_utf8_event(&head));
    std::fs::write(&journal, &torn).expect("write torn journal");

    let ended = Campaign::run(&m5.config, &dir, true, &work.path().join("resume.log"));
    let (report_code, report_text) = kit::powercut(&[os("report"), dir.as_os_str()]);
    let resumed = kit::report(&dir);

    assert_eq!(ended.code, m5.code, "{}", ended.output);
    assert_eq!(kit::totals(&resumed), kit::totals(&whole));
    assert_eq!(kit::failure_titles(&resumed), kit::failure_titles(&whole));
    assert!(
        kit::journal_bytes(&dir).starts_with(&head),
        "resume lost journal lines"
    );
    // The torn line must not have become a bad middle line.
    assert_eq!(report_code, Some(0), "{report_text}");
    assert_eq!(kit::files_ending_with(&dir, ".img"), Vec::<PathBuf>::new());
    assert!(kit::qemu_left_after_exit(&dir).is_empty());
}

#[test]
fn killed_workload_vm_gives_its_seed_an_infra_verdict_and_the_others_run() {
    common::fixture();
    let work = tempfile::tempdir().expect("tempdir");
    // Seed 7 has only two crash points: the campaign going on is cheap to check.
    let config = FaultConfig::smoke("1,7").write(&work.path().join("c.yaml"));
    let dir = work.path().join("run");
    let dir_s = dir.to_string_lossy().into_owned();

    let mut campaign = Campaign::start(&config, &dir, false, &work.path().join("c.log"));
    // Mid-run: seed 1's VM is up and has taken its first crash image.
    let victim = kit::wait_for(CAMPAIGN_TIMEOUT, || {
        let q = kit::qemus_with(&[&dir_s, "work-1"]).pop()?;
        (!kit::files_ending_with(&dir, ".img").is_empty()).then_some(q)
    });
    let killed = victim.as_ref().is_some_and(kit::Qemu::sigkill);
    let ended = campaign.finish(CAMPAIGN_TIMEOUT);
    let report = kit::report(&dir);

    assert!(killed, "work-1 was not caught mid-run: {}", ended.output);
    assert_eq!(ended.code, Some(EXIT_INFRA), "{}", ended.output);
    assert!(kit::total(&report, "infra") >= 1, "{report}");
    assert_eq!(kit::total(&report, "seeds"), 2, "{report}");
    assert!(
        kit::total(&report, "passed") >= 1,
        "seed 7 was not checked: {report}"
    );
    assert_eq!(kit::files_ending_with(&dir, ".img"), Vec::<PathBuf>::new());
    assert!(kit::qemu_left_after_exit(&dir).is_empty());
}

#[test]
fn killed_checker_vm_gives_its_check_an_infra_verdict_and_a_new_checker_takes_over() {
    common::fixture();
    let work = tempfile::tempdir().expect("tempdir");
    let config = FaultConfig::smoke("1..2").write(&work.path().join("c.yaml"));
    let dir = work.path().join("run");
    let dir_s = dir.to_string_lossy().into_owned();

    let mut campaign = Campaign::start(&config, &dir, false, &work.path().join("c.log"));
    // Mid-check: a crash image has been checked and deleted, more are waiting.
    let mut seen = BTreeSet::new();
    let victim = kit::wait_for(CAMPAIGN_TIMEOUT, || {
        let now: BTreeSet<PathBuf> = kit::files_ending_with(&dir, ".img").into_iter().collect();
        let one_checked = seen.iter().any(|p| !now.contains(p));
        seen.extend(now);
        if one_checked {
            kit::qemus_with(&[&dir_s, "checker-"]).pop()
        } else {
            None
        }
    });
    let killed = victim.as_ref().is_some_and(kit::Qemu::sigkill);
    let successor = kit::wait_for(CAMPAIGN_TIMEOUT, || {
        let new = kit::qemus_with(&[&dir_s, "checker-"])
            .into_iter()
            .find(|q| victim.as_ref().is_some_and(|v| v.pid != q.pid));
        match new {
            Some(q) => Some(Some(q)),
            None => (!campaign.running()).then_some(None),
        }
    })
    .flatten();
    let ended = campaign.finish(CAMPAIGN_TIMEOUT);
    let report = kit::report(&dir);
    let (checks, passed, infra) = (
        kit::total(&report, "checks"),
        kit::total(&report, "passed"),
        kit::total(&report, "infra"),
    );

    assert!(killed, "no checker VM caught mid-check: {}", ended.output);
    assert!(successor.is_some(), "no new checker VM booted");
    assert_eq!(ended.code, Some(EXIT_INFRA), "{}", ended.output);
    assert!(infra >= 1, "{report}");
    // One check passed before the kill and at least one on the new checker after it.
    assert!(passed >= 2, "{report}");
    assert_eq!(passed + infra, checks, "{report}");
    assert_eq!(kit::files_ending_with(&dir, ".img"), Vec::<PathBuf>::new());
    assert!(kit::qemu_left_after_exit(&dir).is_empty());
}

#[test]
fn cut_ssh_connection_gives_the_seed_an_infra_verdict() {
    common::fixture();
    let work = tempfile::tempdir().expect("tempdir");
    let config = FaultConfig::smoke("1..2").write(&work.path().join("c.yaml"));
    let dir = work.path().join("run");
    let dir_s = dir.to_string_lossy().into_owned();

    let mut campaign = Campaign::start(&config, &dir, false, &work.path().join("c.log"));
    // Mid-run: the agent streams over SSH and a crash image has been taken.
    let port = kit::wait_for(CAMPAIGN_TIMEOUT, || {
        let q = kit::qemus_with(&[&dir_s, "work-1"]).pop()?;
        (!kit::files_ending_with(&dir, ".img").is_empty()).then(|| q.ssh_port())?
    });
    let cut = port.map_or(0, kit::cut_tcp_connections_to);
    let ended = campaign.finish(CAMPAIGN_TIMEOUT);
    let report = kit::report(&dir);

    assert!(
        cut >= 1,
        "no SSH connection cut (port {port:?}): {}",
        ended.output
    );
    assert_eq!(ended.code, Some(EXIT_INFRA), "{}", ended.output);
    assert!(kit::total(&report, "infra") >= 1, "{report}");
    assert_eq!(kit::total(&report, "seeds"), 1, "{report}");
    assert_eq!(kit::files_ending_with(&dir, ".img"), Vec::<PathBuf>::new());
    assert!(kit::qemu_left_after_exit(&dir).is_empty());
}

#[test]
fn full_disk_stops_the_campaign_at_the_first_failing_write() {
    common::fixture();
    // A smoke seed's run directory peaks at ≈ 7.6 MiB (measured), so a 16 MiB tmpfs never
    // fills; 2 MiB holds the workload VM's pmem (≈ 0.2 MiB) but not its crash images.
    let disk = Tmpfs::mount(2);
    let work = tempfile::tempdir().expect("tempdir");
    let config = FaultConfig {
        min_free_mib: Some(0),
        ..FaultConfig::smoke("1..21")
    }
    .write(&work.path().join("c.yaml"));
    let dir = disk.path().join("run");

    let ended = Campaign::start(&config, &dir, false, &work.path().join("c.log"))
        .finish(FULL_DISK_DEADLINE);
    let started = kit::journal_events(&dir, "seed_started");
    let cause = ended.output.to_lowercase();

    assert_eq!(ended.code, Some(EXIT_INFRA), "{}", ended.output);
    assert!(
        ["no space left", "disk full", "free space"]
            .iter()
            .any(|c| cause.contains(c)),
        "{}",
        ended.output
    );
    assert!(started <= 2, "{started} seeds started on a full disk");
    assert!(
        ended.elapsed < FULL_DISK_DEADLINE,
        "went on for {:?}",
        ended.elapsed
    );
    assert_eq!(kit::files_ending_with(&dir, ".img"), Vec::<PathBuf>::new());
    assert!(kit::qemu_left_after_exit(&dir).is_empty());
}

#[test]
fn too_little_free_space_is_refused_before_any_vm_boots() {
    common::fixture();
    let disk = Tmpfs::mount(16);
    let work = tempfile::tempdir().expect("tempdir");
    let config = FaultConfig {
        min_free_mib: Some(64),
        ..FaultConfig::smoke("1..3")
    }
    .write(&work.path().join("c.yaml"));
    let dir = disk.path().join("run");

    let ended = Campaign::run(&config, &dir, false, &work.path().join("c.log"));

    assert_eq!(ended.code, Some(EXIT_INFRA), "{}", ended.output);
    assert!(
        ended.output.contains(&*disk.path().to_string_lossy()),
        "{}",
        ended.output
    );
    assert!(
        ended.output.to_lowercase().contains("free"),
        "{}",
        ended.output
    );
    assert_eq!(kit::journal_events(&dir, "seed_started"), 0);
    assert_eq!(
        kit::files_ending_with(disk.path(), ".console.log"),
        Vec::<PathBuf>::new(),
        "a VM booted"
    );
}

/// Most run directories the kill test goes through (a fast engine finishes a campaign
/// before many of the drawn moments).
const MAX_KILL_RUNS: usize = 50;

/// One run directory of the kill test: SIGKILLed at drawn moments and resumed each time
/// until its campaign finished by itself.
struct KilledRun {
    dir: PathBuf,
    /// The moments (time since that attempt started) of the kills that hit a running
    /// harness.
    kills: Vec<Duration>,
    /// The journal's complete lines right after each kill.
    journals_at_kill: Vec<Vec<u8>>,
    /// QEMU processes mentioning the run directory after each kill.
    qemu_after_kill: Vec<Vec<String>>,
    /// The attempt that finished by itself.
    ended: kit::Ended,
    /// `report.json` as that attempt left it.
    report: serde_json::Value,
    /// `powercut report DIR` afterwards: exit code and output.
    report_code: Option<i32>,
    report_text: String,
}

/// Run the m5 campaign in `dir`, SIGKILL it at a moment drawn from `rng` (a fraction of
/// the uninterrupted run's time) and resume it, again and again, until an attempt
/// finishes before its moment or `max_kills` kills have hit; then let it finish.
fn kill_until_done(
    m5: &M5Run,
    dir: &Path,
    rng: &mut rand_chacha::ChaCha8Rng,
    max_kills: usize,
    log: &Path,
) -> KilledRun {
    let mut kills = Vec::new();
    let mut journals_at_kill = Vec::new();
    let mut qemu_after_kill = Vec::new();
    let ended = loop {
        let resume = dir.exists();
        let mut campaign = Campaign::start(&m5.config, dir, resume, log);
        if kills.len() == max_kills {
            break campaign.finish(CAMPAIGN_TIMEOUT);
        }
        let moment = m5.elapsed.mul_f64(rng.gen_range(KILL_FRACTION));
        while campaign.running() && campaign.elapsed() < moment {
            std::thread::sleep(kit::POLL);
        }
        if !campaign.running() {
            break campaign.finish(CAMPAIGN_TIMEOUT);
        }
        campaign.sigkill();
        eprintln!(
            "{}: harness SIGKILLed {moment:?} after its start",
            dir.display()
        );
        kills.push(moment);
        qemu_after_kill.push(kit::qemu_left_after_exit(dir));
        journals_at_kill.push(kit::complete_lines(&kit::journal_bytes(dir)).to_vec());
    };
    let report = kit::report(dir);
    let (report_code, report_text) = kit::powercut(&[os("report"), dir.as_os_str()]);
    KilledRun {
        dir: dir.to_owned(),
        kills,
        journals_at_kill,
        qemu_after_kill,
        ended,
        report,
        report_code,
        report_text,
    }
}

#[test]
fn sigkilled_and_resumed_campaign_matches_an_uninterrupted_one() {
    let m5 = m5_run();
    assert_eq!(m5.code, Some(EXIT_FAILURE), "m5 campaign: {}", m5.output);
    let whole = kit::report(&m5.dir);
    let kills = env_number("POWERCUT_FAULT_KILLS").map_or(DEFAULT_KILLS, |k| k as usize);
    let kill_seed = env_number("POWERCUT_FAULT_KILL_SEED").unwrap_or(DEFAULT_KILL_SEED);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(kill_seed);
    let work = tempfile::tempdir().expect("tempdir");
    let log = work.path().join("campaign.log");

    // Once a run directory's campaign has finished, further kills cannot hit it: go on
    // in a fresh directory until `kills` kills have hit a running harness.
    let mut runs: Vec<KilledRun> = Vec::new();
    let mut kills_done = 0;
    while (runs.is_empty() || kills_done < kills) && runs.len() < MAX_KILL_RUNS {
        let dir = work.path().join(format!("run-{}", runs.len()));
        let run = kill_until_done(m5, &dir, &mut rng, kills - kills_done, &log);
        kills_done += run.kills.len();
        runs.push(run);
    }

    assert_eq!(kills_done, kills, "kill seed {kill_seed:#x}");
    for run in &runs {
        let at = format!(
            "{} (kill seed {kill_seed:#x}, kills at {:?})",
            run.dir.display(),
            run.kills
        );
        let journal = kit::journal_bytes(&run.dir);
        assert_eq!(run.ended.code, m5.code, "{at}: {}", run.ended.output);
        assert_eq!(kit::totals(&run.report), kit::totals(&whole), "{at}");
        assert_eq!(
            kit::failure_titles(&run.report),
            kit::failure_titles(&whole),
            "{at}"
        );
        for (i, before) in run.journals_at_kill.iter().enumerate() {
            assert!(
                journal.starts_with(before),
                "{at}: kill {i} lost journal lines"
            );
        }
        for (i, left) in run.qemu_after_kill.iter().enumerate() {
            assert!(left.is_empty(), "{at}: QEMU outlived kill {i}: {left:?}");
        }
        assert_eq!(run.report_code, Some(0), "{at}: {}", run.report_text);
        assert_eq!(
            kit::files_ending_with(&run.dir, ".img"),
            Vec::<PathBuf>::new(),
            "{at}"
        );
    }
}
