//! The guest serial console: reading its tail for error messages, and streaming it live
//! under `--debug`.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The last `lines` lines of a log file (lossy UTF-8), or a note that it is empty/missing.
pub fn console_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) if !bytes.is_empty() => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Ok(_) => format!("({} is empty)", path.display()),
        Err(e) => format!("({}: {e})", path.display()),
    }
}

/// Copies new console lines to stderr, prefixed with the VM name, until dropped.
pub struct ConsoleStreamer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ConsoleStreamer {
    /// Start following `path`.
    pub fn start(path: &Path, name: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path: PathBuf = path.to_owned();
        let name = name.to_owned();
        let thread = std::thread::spawn(move || follow(&path, &name, &flag));
        ConsoleStreamer {
            stop,
            thread: Some(thread),
        }
    }
}

fn follow(path: &Path, name: &str, stop: &AtomicBool) {
    let mut pos = 0u64;
    let mut partial = String::new();
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut f) = std::fs::File::open(path) {
            if f.seek(SeekFrom::Start(pos)).is_ok() {
                let mut r = BufReader::new(f);
                let mut buf = Vec::new();
                while let Ok(n) = r.read_until(b'\n', &mut buf) {
                    if n == 0 {
                        break;
                    }
                    pos += n as u64;
                    partial.push_str(&String::from_utf8_lossy(&buf));
                    buf.clear();
                    if partial.ends_with('\n') {
                        eprint!("[{name} console] {partial}");
                        partial.clear();
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for ConsoleStreamer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_returns_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.log");
        std::fs::write(&p, "a\nb\nc\nd\n").expect("write");
        assert_eq!(console_tail(&p, 2), "c\nd");
        assert!(console_tail(&dir.path().join("none"), 2).contains("none"));
    }
}
