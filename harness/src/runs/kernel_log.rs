//! Kernel complaints in a run directory's guest console logs: warnings (`WARN_ON()`),
//! lockdep, KASAN and UBSAN reports, BUGs, oopses, panics and hung tasks, each found by the
//! first line the kernel prints for it. They are not durability verdicts (a campaign's exit
//! status does not change), but a kernel developer running a debug kernel wants to see them
//! next to the results: the campaign summary and the reports list them.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::rundir::{SEEDS, WORKLOADS};

/// How a complaint's first line starts (after the `[   12.345678] ` timestamp, if any).
pub const COMPLAINT_STARTS: &[&str] = &[
    "WARNING:",
    "BUG:",
    "kernel BUG at",
    "Oops:",
    "general protection fault",
    "Kernel panic",
    "UBSAN:",
    "INFO: task ",
    "INFO: rcu_",
    "watchdog: BUG:",
];

/// Directory of a run directory holding the consoles of the booted states its workload VMs
/// restored from (written by the campaign).
pub const BOOT_DIR: &str = "boot";

/// Complaints kept in a report (the count covers all of them).
pub const MAX_COMPLAINTS: usize = 100;
/// Console logs read at most (a run directory is hostile input: bounded).
const MAX_CONSOLES: usize = 20_000;
/// Bytes read of each console log at most.
const MAX_CONSOLE_BYTES: u64 = 8 * 1024 * 1024;
/// Characters kept of a complaint's line.
const MAX_LINE_CHARS: usize = 200;

/// One complaint: where its first line is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelComplaint {
    /// Console log, relative to the run directory.
    pub console: String,
    /// 1-based line number in it.
    pub line: usize,
    /// The line, without its timestamp (at most 200 characters).
    pub text: String,
}

/// The complaints of a run directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelLog {
    /// Console logs scanned.
    pub consoles: usize,
    /// Complaints found (all of them).
    pub total: usize,
    /// The first [`MAX_COMPLAINTS`], by console path and line.
    pub complaints: Vec<KernelComplaint>,
}

/// The complaints in one console's text: (1-based line, line without timestamp). Pure.
pub fn complaints_in(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let body = strip_timestamp(line.trim_start_matches('\r')).trim_start();
            COMPLAINT_STARTS
                .iter()
                .any(|s| body.starts_with(s))
                .then(|| (i + 1, body.chars().take(MAX_LINE_CHARS).collect()))
        })
        .collect()
}

/// `[   12.345678] text` → `text`; other lines unchanged.
fn strip_timestamp(line: &str) -> &str {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let stamp = &rest[..end];
            if !stamp.is_empty()
                && stamp
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.' || c == ' ')
            {
                return &rest[end + 1..];
            }
        }
    }
    t
}

/// Is `name` a console log (of the matrix kernel whose consoles end in `suffix`, if given)?
fn is_console(name: &str, suffix: Option<&str>) -> bool {
    name.ends_with(".console.log") && suffix.is_none_or(|x| name.ends_with(x))
}

/// Scan the console logs of `dir`: `seeds/*/`, `workloads/*/` and `boot/` (the booted
/// states' boots; only names ending in `suffix` when given: one kernel of a matrix) and
/// `checkers/` (not for a matrix kernel).
/// Unreadable files are skipped; everything is bounded.
pub fn scan_run_dir(dir: &Path, suffix: Option<&str>) -> KernelLog {
    let mut files: Vec<String> = Vec::new();
    for top in [SEEDS, WORKLOADS] {
        let Ok(items) = std::fs::read_dir(dir.join(top)) else {
            continue;
        };
        for item in items.flatten().take(MAX_CONSOLES) {
            let Ok(entries) = std::fs::read_dir(item.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if is_console(&name, suffix) {
                    files.push(format!(
                        "{top}/{}/{name}",
                        item.file_name().to_string_lossy()
                    ));
                }
            }
            if files.len() >= MAX_CONSOLES {
                break;
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir.join(BOOT_DIR)) {
        for e in entries.flatten().take(MAX_CONSOLES) {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_console(&name, suffix) {
                files.push(format!("{BOOT_DIR}/{name}"));
            }
        }
    }
    if suffix.is_none() {
        if let Ok(entries) = std::fs::read_dir(dir.join("checkers")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".console.log") {
                    files.push(format!("checkers/{name}"));
                }
            }
        }
    }
    files.sort();
    files.truncate(MAX_CONSOLES);
    let mut log = KernelLog::default();
    for rel in files {
        let path = dir.join(&rel);
        // Regular files only (a FIFO or device planted in a run directory is skipped).
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let Ok(f) = std::fs::File::open(&path) else {
            continue;
        };
        let mut bytes = Vec::new();
        if f.take(MAX_CONSOLE_BYTES).read_to_end(&mut bytes).is_err() {
            continue;
        }
        log.consoles += 1;
        for (line, text) in complaints_in(&String::from_utf8_lossy(&bytes)) {
            log.total += 1;
            if log.complaints.len() < MAX_COMPLAINTS {
                log.complaints.push(KernelComplaint {
                    console: rel.clone(),
                    line,
                    text,
                });
            }
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lockdep_kasan_warn_and_hung_tasks_by_their_first_line() {
        let text = "powercut: ready\n\
[   41.123456] ======================================================\n\
[   41.123457] WARNING: possible circular locking dependency detected\n\
[   41.123458] 7.3.4-daxfix-debug #2 Not tainted\n\
[   50.000001] BUG: KASAN: slab-use-after-free in dax_writeback_one+0x1/0x2\n\
WARNING: CPU: 0 PID: 12 at fs/dax.c:123 dax_insert_entry+0x5/0x9\n\
[  120.5] INFO: task powercut-agent:99 blocked for more than 120 seconds.\n\
EXT4-fs warning (device pmem0): not a complaint\n\
[    1.0] x86/fpu: WARNING: not at the start\n";
        let found = complaints_in(text);
        let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [3, 5, 6, 7]);
        assert_eq!(
            found[0].1,
            "WARNING: possible circular locking dependency detected"
        );
        assert!(found[1].1.starts_with("BUG: KASAN: slab-use-after-free"));
    }

    #[test]
    fn quiet_consoles_have_no_complaints() {
        assert!(complaints_in("powercut: pmem0 dax=1\npowercut: ready\n").is_empty());
        assert!(complaints_in("").is_empty());
    }

    #[test]
    fn a_run_directory_is_scanned_with_relative_paths_and_bounded_lists() {
        let d = tempfile::tempdir().unwrap();
        let w = d.path().join("workloads/w1");
        std::fs::create_dir_all(&w).unwrap();
        std::fs::create_dir_all(d.path().join("checkers")).unwrap();
        std::fs::write(w.join("work-w1.console.log"), "[ 1.0] WARNING: x\n").unwrap();
        std::fs::write(w.join("work-w1-k1.console.log"), "BUG: y\n").unwrap();
        std::fs::write(w.join("notes.txt"), "BUG: not a console\n").unwrap();
        std::fs::create_dir_all(d.path().join(BOOT_DIR)).unwrap();
        std::fs::write(
            d.path().join("boot/booted-abc.console.log"),
            "[ 0.02] BUG: KASAN: wild-memory-access in do_raw_spin_lock+0x121/0x270\n",
        )
        .unwrap();
        let many: String = (0..150).map(|i| format!("BUG: n{i}\n")).collect();
        std::fs::write(d.path().join("checkers/checker-0.console.log"), many).unwrap();

        let all = scan_run_dir(d.path(), None);
        assert_eq!((all.consoles, all.total), (4, 153));
        assert_eq!(all.complaints.len(), MAX_COMPLAINTS);
        assert_eq!(all.complaints[0].console, "boot/booted-abc.console.log");
        assert!(all.complaints[0]
            .text
            .starts_with("BUG: KASAN: wild-memory-access"));

        let k1 = scan_run_dir(d.path(), Some("-k1.console.log"));
        assert_eq!((k1.consoles, k1.total), (1, 1));
        assert_eq!(
            k1.complaints[0].console,
            "workloads/w1/work-w1-k1.console.log"
        );
    }
}
