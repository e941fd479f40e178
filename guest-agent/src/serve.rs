//! The protocol loop of `powercut-agent serve`: reads [`HostMsg`] lines, runs workloads
//! (op events, barriers, markers), answers `ReadFiles`, `Extents` and `Check`, and writes [`AgentMsg`] lines, each
//! flushed at once. Generic over the streams, so tests drive it in memory.

use std::collections::HashSet;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use workloads::protocol::{AgentMsg, HostMsg, PROTOCOL_VERSION};
use workloads::Workload;

use crate::check::{check, CheckRequest};
use crate::exec::Executor;
use crate::marker::Marker;
use crate::readback;
use workloads::content::Patterns;

/// Whether the session goes on after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Keep reading requests.
    Go,
    /// `Quit` or end of input: stop, exit 0.
    Stop,
}

/// Speak the protocol on `input` / `output` until `Quit` or end of input (both `Ok`). Only
/// I/O errors on the streams end it with `Err`; bad requests and failing ops are reported
/// to the host and the loop goes on.
pub fn serve(input: impl BufRead, output: impl Write) -> io::Result<()> {
    let mut session = Session { input, output };
    session.send(&AgentMsg::Hello {
        protocol: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })?;
    while let Some(msg) = session.next_msg()? {
        if session.handle(msg)? == Flow::Stop {
            break;
        }
    }
    Ok(())
}

/// One run of a workload, as requested by `HostMsg::Run`.
struct RunRequest<'a> {
    dir: &'a Path,
    workload: &'a Workload,
    barriers: HashSet<usize>,
    markers: bool,
}

struct Session<R, W> {
    input: R,
    output: W,
}

impl<R: BufRead, W: Write> Session<R, W> {
    /// Write one message line and flush it.
    fn send(&mut self, msg: &AgentMsg) -> io::Result<()> {
        serde_json::to_writer(&mut self.output, msg).map_err(io::Error::other)?;
        self.output.write_all(b"\n")?;
        self.output.flush()
    }

    /// The next well-formed request, or `None` at end of input. Blank lines are skipped; a
    /// malformed line is answered with `Error` and skipped.
    fn next_msg(&mut self) -> io::Result<Option<HostMsg>> {
        let mut line = Vec::new();
        loop {
            line.clear();
            if self.input.read_until(b'\n', &mut line)? == 0 {
                return Ok(None);
            }
            let text = match std::str::from_utf8(&line) {
                Ok(t) => t.trim(),
                Err(e) => {
                    self.send_error(format!("malformed host message (not UTF-8): {e}"))?;
                    continue;
                }
            };
            if text.is_empty() {
                continue;
            }
            match serde_json::from_str::<HostMsg>(text) {
                Ok(msg) => return Ok(Some(msg)),
                Err(e) => self.send_error(format!("malformed host message: {e}"))?,
            }
        }
    }

    fn send_error(&mut self, message: String) -> io::Result<()> {
        self.send(&AgentMsg::Error { message })
    }

    /// Handle a request outside a run.
    fn handle(&mut self, msg: HostMsg) -> io::Result<Flow> {
        match msg {
            HostMsg::Quit => Ok(Flow::Stop),
            HostMsg::Run {
                dir,
                workload,
                barriers,
                markers,
            } => self.run(RunRequest {
                dir: Path::new(&dir),
                workload: &workload,
                barriers: barriers.into_iter().collect(),
                markers,
            }),
            HostMsg::ReadFiles {
                dir,
                names,
                seed,
                sources,
            } => {
                self.read_files(
                    &dir,
                    &names,
                    Patterns {
                        seed,
                        sources: &sources,
                    },
                )?;
                Ok(Flow::Go)
            }
            HostMsg::Check {
                device,
                fs,
                mountpoint,
                dir,
                names,
                seed,
                sources,
            } => {
                let answer = check(&CheckRequest {
                    device: &device,
                    fs: &fs,
                    mountpoint: &mountpoint,
                    dir: &dir,
                    names: &names,
                    patterns: Patterns {
                        seed,
                        sources: &sources,
                    },
                });
                self.send(&answer)?;
                Ok(Flow::Go)
            }
            HostMsg::Extents { dir, names } => {
                let files = crate::extents::extents(Path::new(&dir), &names);
                self.send(&AgentMsg::Extents { files })?;
                Ok(Flow::Go)
            }
            HostMsg::Continue => {
                self.send_error(
                    "continue received, but no workload is waiting at a barrier".into(),
                )?;
                Ok(Flow::Go)
            }
        }
    }

    fn read_files(&mut self, dir: &str, names: &[String], p: Patterns<'_>) -> io::Result<()> {
        let files = readback::read_files(Path::new(dir), names, p);
        self.send(&AgentMsg::Files { files })
    }

    /// Run a workload: events around every op, barriers, `Finished` with the summed op time.
    fn run(&mut self, req: RunRequest<'_>) -> io::Result<Flow> {
        let mut exec = match Executor::new(req.dir, req.workload.seed) {
            Ok(exec) => exec,
            Err(e) => {
                self.send_error(format!(
                    "cannot create or open workload directory {}: {e}",
                    req.dir.display()
                ))?;
                return Ok(Flow::Go);
            }
        };
        let mut op_time = Duration::ZERO;
        for (k, op) in req.workload.ops.iter().enumerate() {
            if req.markers {
                Marker::OpStart.emit(k);
            }
            self.send(&AgentMsg::OpStarted { k })?;
            let t0 = Instant::now();
            let outcome = exec.execute(k, op);
            op_time += t0.elapsed();
            self.send(&AgentMsg::OpDone { k, outcome })?;
            if req.markers {
                Marker::OpDone.emit(k);
            }
            if req.barriers.contains(&k) && self.barrier(k)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        drop(exec);
        self.send(&AgentMsg::Finished {
            ops: req.workload.ops.len(),
            micros: u64::try_from(op_time.as_micros()).unwrap_or(u64::MAX),
        })?;
        Ok(Flow::Go)
    }

    /// Announce the barrier after op `k` and wait for `Continue`. `ReadFiles` is answered
    /// while waiting; `Quit` or end of input stops the session; other requests get `Error`.
    fn barrier(&mut self, k: usize) -> io::Result<Flow> {
        self.send(&AgentMsg::Barrier { k })?;
        loop {
            match self.next_msg()? {
                None | Some(HostMsg::Quit) => return Ok(Flow::Stop),
                Some(HostMsg::Continue) => return Ok(Flow::Go),
                Some(HostMsg::ReadFiles {
                    dir,
                    names,
                    seed,
                    sources,
                }) => self.read_files(&dir, &names, Patterns { seed, sources: &sources })?,
                Some(HostMsg::Check { .. }) => self.send_error(format!(
                    "check received while waiting at the barrier after op {k}; send continue first"
                ))?,
                Some(HostMsg::Extents { .. }) => self.send_error(format!(
                    "extents received while waiting at the barrier after op {k}; send continue first"
                ))?,
                Some(HostMsg::Run { .. }) => self.send_error(format!(
                    "run received while waiting at the barrier after op {k}; send continue first"
                ))?,
            }
        }
    }
}
