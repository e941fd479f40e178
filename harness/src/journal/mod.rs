//! `journal.jsonl`: the campaign's events, appended one JSON line at a time and fsync'd after
//! each, so a campaign killed at any point keeps every recorded result. Reading is strict:
//! only a torn *last* line (a crash mid-write, cut anywhere, even inside a UTF-8 character)
//! is ignored; any other line that does not parse is an error naming its line number, so a
//! damaged journal can never turn into a PASS.
//!
//! A kernel matrix (`kernels:`) tags every line it writes with the kernel's name: one more
//! key, `"kernel": "<name>"`, beside the event's own (see [`KERNEL_KEY`]). Untagged lines
//! (every journal of a campaign on one kernel, and journals written before matrices) belong
//! to no kernel. The fold key is (kernel, item): each kernel's lines are folded on their
//! own ([`JournalContents::of_kernel`]).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

pub mod events;
pub mod fold;
pub mod sink;

use self::events::{Event, JOURNAL_VERSION};
use crate::config::shard::{describe, Shard};

/// Errors of reading or appending to a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The journal.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A line (not the torn last one) is not an event.
    #[error("{path}:{line}: not a journal event ({message}); the journal is damaged: restore it or start a new run directory")]
    BadLine {
        /// The journal.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The path is not a journal file at all (a FIFO, a device, a directory, too large), or
    /// a line is longer than any event.
    #[error("{path}: {why}; a journal is a regular file of JSON lines")]
    NotAJournal {
        /// The journal.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The first line is not a header of the version this powercut reads.
    #[error("{path}:1: {message}")]
    Version {
        /// The journal.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Largest journal read, in bytes (a campaign of millions of checks stays far below).
pub const MAX_JOURNAL_BYTES: u64 = 4 << 30;
/// Longest journal line, in bytes (an event with its findings and console tail).
pub const MAX_LINE_BYTES: u64 = 64 << 20;

/// The key that tags a journal line with its kernel in a kernel matrix.
pub const KERNEL_KEY: &str = "kernel";

/// A journal read from disk.
#[derive(Debug, Clone, Default)]
pub struct JournalContents {
    /// Its events, in order (the header included).
    pub events: Vec<Event>,
    /// The kernel tag of each event (same order): `None` for an untagged line.
    pub kernels: Vec<Option<String>>,
    /// Bytes of complete lines: a torn last line starts here.
    pub valid_len: u64,
    /// A torn last line was found (and ignored).
    pub torn: bool,
}

/// Read the journal at `path` strictly (see the module doc). A missing file is an empty
/// journal.
pub fn read(path: &Path) -> Result<JournalContents, JournalError> {
    let io = |source| JournalError::Io {
        path: path.to_owned(),
        source,
    };
    // Type and size are checked on the open file before a byte is read: a symlink to
    // /dev/zero or a FIFO is refused, never read forever.
    let file = match crate::input::open_regular(path, MAX_JOURNAL_BYTES, "journal") {
        Ok((f, _)) => f,
        Err(e) if e.is_not_found() => return Ok(JournalContents::default()),
        Err(crate::input::InputError::Io { source, .. }) => return Err(io(source)),
        Err(e) => {
            return Err(JournalError::NotAJournal {
                path: path.to_owned(),
                why: e.to_string(),
            })
        }
    };
    let mut reader = BufReader::new(file.take(MAX_JOURNAL_BYTES));
    let mut out = JournalContents::default();
    let mut buf = Vec::new();
    let mut line = 0usize;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        if n as u64 > MAX_LINE_BYTES {
            return Err(JournalError::NotAJournal {
                path: path.to_owned(),
                why: format!("line {} is longer than {MAX_LINE_BYTES} bytes", line + 1),
            });
        }
        line += 1;
        let complete = buf.last() == Some(&b'\n');
        match parse_line(&buf) {
            Ok((event, kernel)) => {
                check_header(path, line, &event)?;
                out.events.push(event);
                out.kernels.push(kernel);
                if complete {
                    out.valid_len += n as u64;
                }
            }
            // The last line without its newline: a write cut short by a crash.
            Err(_) if !complete => out.torn = true,
            Err(message) => {
                return Err(JournalError::BadLine {
                    path: path.to_owned(),
                    line,
                    message,
                })
            }
        }
    }
    Ok(out)
}

/// One line: the event and its kernel tag (a string, or absent).
fn parse_line(buf: &[u8]) -> Result<(Event, Option<String>), String> {
    let mut value: serde_json::Value = serde_json::from_slice(buf).map_err(|e| e.to_string())?;
    let kernel = match value.as_object_mut().and_then(|o| o.remove(KERNEL_KEY)) {
        None => None,
        Some(serde_json::Value::String(k)) => Some(k),
        Some(other) => return Err(format!("`{KERNEL_KEY}` is {other}, not a string")),
    };
    let event = serde_json::from_value(value).map_err(|e| e.to_string())?;
    Ok((event, kernel))
}

impl JournalContents {
    /// The events of one kernel of a matrix (`Some(name)`: the lines tagged with it), or of
    /// a campaign on one kernel (`None`: the untagged lines).
    pub fn of_kernel(&self, kernel: Option<&str>) -> Vec<Event> {
        self.events
            .iter()
            .zip(&self.kernels)
            .filter(|(_, k)| k.as_deref() == kernel)
            .map(|(e, _)| e.clone())
            .collect()
    }

    /// The shard its header records (`None`: a whole campaign, or no header).
    pub fn shard(&self) -> Option<Shard> {
        match self.events.first() {
            Some(Event::Journal { shard, .. }) => *shard,
            _ => None,
        }
    }

    /// The kernel names the journal's lines are tagged with, in order of first appearance
    /// (empty for a campaign on one kernel).
    pub fn kernel_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in self.kernels.iter().flatten() {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
        out
    }
}

fn check_header(path: &Path, line: usize, event: &Event) -> Result<(), JournalError> {
    let bad = |message: String| {
        Err(JournalError::Version {
            path: path.to_owned(),
            message,
        })
    };
    match (line, event) {
        (1, Event::Journal { version, .. }) if *version == JOURNAL_VERSION => Ok(()),
        (1, Event::Journal { version, powercut, .. }) => bad(format!(
            "journal version {version} (written by powercut {powercut}); this powercut reads version {JOURNAL_VERSION}"
        )),
        (1, _) => bad(format!(
            "the first line is not a journal header (version {JOURNAL_VERSION}); was this run directory written by an older powercut?"
        )),
        (_, Event::Journal { .. }) => Err(JournalError::BadLine {
            path: path.to_owned(),
            line,
            message: "a second journal header".into(),
        }),
        _ => Ok(()),
    }
}

/// The journal open for appending.
#[derive(Debug)]
pub struct JournalWriter {
    file: File,
    path: PathBuf,
    kernel: Option<String>,
}

impl JournalWriter {
    /// Open the journal at `path` for appending: read it strictly, cut off a torn last line
    /// (so the next event starts on a line of its own), and write the header into a new one.
    /// Returns the events already there.
    pub fn open(path: &Path) -> Result<(JournalWriter, Vec<Event>), JournalError> {
        Self::open_for(path, None, None)
    }

    /// [`JournalWriter::open`] for one kernel of a matrix: every line it appends is tagged
    /// with `kernel`, and the events returned are that kernel's (untagged ones for `None`).
    /// A new journal's header records `shard`; an existing journal's header must record
    /// the same shard (else [`JournalError::Version`] naming both).
    pub fn open_for(
        path: &Path,
        kernel: Option<&str>,
        shard: Option<Shard>,
    ) -> Result<(JournalWriter, Vec<Event>), JournalError> {
        let contents = read(path)?;
        let io = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if contents.torn || file.metadata().map_err(io)?.len() > contents.valid_len {
            file.set_len(contents.valid_len).map_err(io)?;
        }
        let mut w = JournalWriter {
            file,
            path: path.to_owned(),
            kernel: None,
        };
        if !contents.events.is_empty() && contents.shard() != shard {
            return Err(JournalError::Version {
                path: path.to_owned(),
                message: format!(
                    "the journal is of shard {}, this campaign would run shard {}; a run directory keeps its shard",
                    describe(contents.shard()),
                    describe(shard)
                ),
            });
        }
        if contents.events.is_empty() {
            w.append(&Event::Journal {
                version: JOURNAL_VERSION,
                powercut: env!("CARGO_PKG_VERSION").to_owned(),
                shard,
            })?;
            if let Some(dir) = path.parent() {
                crate::host::fsync_dir(dir).map_err(io)?;
            }
        }
        w.kernel = kernel.map(str::to_owned);
        let events = if contents.events.is_empty() {
            Vec::new()
        } else {
            contents.of_kernel(kernel)
        };
        Ok((w, events))
    }

    /// Append one event and fsync it.
    pub fn append(&mut self, e: &Event) -> Result<(), JournalError> {
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let line = line(e, self.kernel.as_deref()).map_err(|e| io(std::io::Error::other(e)))?;
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

/// One journal line (with its newline): the event, tagged with `kernel` in a matrix.
pub fn line(e: &Event, kernel: Option<&str>) -> Result<String, serde_json::Error> {
    let mut value = serde_json::to_value(e)?;
    if let (Some(k), Some(obj)) = (kernel, value.as_object_mut()) {
        obj.insert(
            KERNEL_KEY.to_owned(),
            serde_json::Value::String(k.to_owned()),
        );
    }
    let mut line = value.to_string();
    line.push('\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_lines_carry_their_kernel_and_fold_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("journal.jsonl");
        for k in ["6.1", "6.12"] {
            let (mut w, _) = JournalWriter::open_for(&p, Some(k), None).expect("open");
            w.append(&started(1)).expect("append");
        }

        let c = read(&p).expect("read");
        let text = std::fs::read_to_string(&p).expect("text");

        assert_eq!(c.kernel_names(), ["6.1", "6.12"]);
        assert_eq!(c.of_kernel(Some("6.12")), vec![started(1)]);
        assert_eq!(c.of_kernel(None).len(), 1, "the header only");
        assert!(text.contains(r#""kernel":"6.1""#), "{text}");
        let (_, again) = JournalWriter::open_for(&p, Some("6.1"), None).expect("reopen");
        assert_eq!(again, vec![started(1)]);
    }

    #[test]
    fn a_kernel_tag_that_is_not_a_string_is_a_bad_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = journal_with(dir.path(), &[started(1)]);
        let mut text = std::fs::read_to_string(&p).expect("text");
        text.push_str("{\"event\":\"seed_done\",\"seed\":1,\"kernel\":7}\n");
        std::fs::write(&p, text).expect("write");

        let err = read(&p).expect_err("bad tag").to_string();

        assert!(err.contains(":3:") && err.contains("not a string"), "{err}");
    }

    fn started(seed: u64) -> Event {
        Event::SeedStarted {
            item: crate::records::item::TrialItem::Seed(seed),
        }
    }

    fn journal_with(dir: &Path, events: &[Event]) -> PathBuf {
        let p = dir.join("journal.jsonl");
        let (mut w, _) = JournalWriter::open(&p).expect("open");
        for e in events {
            w.append(e).expect("append");
        }
        p
    }

    #[test]
    fn a_journal_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = journal_with(
            dir.path(),
            &[
                started(1),
                Event::SeedDone {
                    item: crate::records::item::TrialItem::Seed(1),
                },
            ],
        );

        let (_, events) = JournalWriter::open(&p).expect("reopen");

        assert_eq!(events.len(), 3);
        assert!(matches!(events[0], Event::Journal { version: 2, .. }));
        assert_eq!(
            events[2],
            Event::SeedDone {
                item: crate::records::item::TrialItem::Seed(1),
            }
        );
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_cut_off_even_inside_a_character() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = journal_with(dir.path(), &[started(1)]);
        let whole = std::fs::read(&p).expect("read");
        let torn = "{\"event\":\"stopped\",\"reason\":\"é".as_bytes();
        let mut bytes = whole.clone();
        bytes.extend_from_slice(&torn[..torn.len() - 1]);
        std::fs::write(&p, &bytes).expect("write");

        let read_back = read(&p).expect("a torn last line is fine");
        let (mut w, events) = JournalWriter::open(&p).expect("reopen");
        w.append(&started(2)).expect("append");
        let after = read(&p).expect("reads");

        assert!(read_back.torn);
        assert_eq!(events.len(), 2);
        assert_eq!(after.events.len(), 3);
        assert!(!after.torn);
        assert!(std::fs::read(&p).expect("read").starts_with(&whole));
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error_with_its_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = journal_with(
            dir.path(),
            &[
                started(1),
                Event::SeedDone {
                    item: crate::records::item::TrialItem::Seed(1),
                },
            ],
        );
        let text = std::fs::read_to_string(&p).expect("read");
        let damaged = text.replacen("seed_done", "seed_d0ne", 1);
        std::fs::write(&p, damaged).expect("write");

        let err = read(&p).expect_err("damaged");
        let reopened = JournalWriter::open(&p).expect_err("damaged");

        assert!(
            matches!(err, JournalError::BadLine { line: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("journal.jsonl:3"), "{err}");
        assert!(matches!(reopened, JournalError::BadLine { line: 3, .. }));
    }

    #[test]
    fn invalid_utf8_and_blank_lines_in_the_middle_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = journal_with(dir.path(), &[started(1)]);
        let good = std::fs::read(&p).expect("read");
        let next = b"{\"event\":\"seed_done\",\"seed\":1}\n";
        let bad_bytes = [good.as_slice(), b"\xff\xfe\n", next].concat();
        let blank_line = [good.as_slice(), b"\n", next].concat();
        let empty = dir.path().join("empty.jsonl");
        std::fs::write(&empty, b"").expect("write");

        std::fs::write(&p, &bad_bytes).expect("write");
        let bad = read(&p).expect_err("bad bytes");
        std::fs::write(&p, &blank_line).expect("write");
        let blank = read(&p).expect_err("blank line");

        assert!(
            matches!(bad, JournalError::BadLine { line: 3, .. }),
            "{bad}"
        );
        assert!(
            matches!(blank, JournalError::BadLine { line: 3, .. }),
            "{blank}"
        );
        assert!(read(&empty).expect("empty").events.is_empty());
    }

    #[test]
    fn the_header_records_the_shard_and_a_journal_keeps_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("journal.jsonl");
        let one: Shard = "1/2".parse().expect("shard");
        let two: Shard = "2/2".parse().expect("shard");
        drop(JournalWriter::open_for(&p, None, Some(one)).expect("new"));

        let contents = read(&p).expect("read");
        let same = JournalWriter::open_for(&p, None, Some(one));
        let other = JournalWriter::open_for(&p, None, Some(two)).expect_err("other shard");
        let whole = JournalWriter::open(&p).expect_err("no shard");

        assert_eq!(contents.shard(), Some(one));
        assert!(std::fs::read_to_string(&p)
            .expect("text")
            .contains(r#""shard":"1/2""#));
        assert!(same.is_ok());
        assert!(
            other.to_string().contains("shard 1/2") && other.to_string().contains("shard 2/2"),
            "{other}"
        );
        assert!(
            whole.to_string().contains("none (the whole campaign)"),
            "{whole}"
        );
    }

    #[test]
    fn a_journal_without_a_header_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("journal.jsonl");
        std::fs::write(&p, "{\"entry\":\"seed_done\",\"seed\":1,\"infra\":null}\n").expect("write");

        let err = read(&p).expect_err("old format");

        assert!(err.to_string().contains("journal.jsonl:1"), "{err}");
    }
}
