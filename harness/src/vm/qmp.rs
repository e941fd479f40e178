//! QMP client (through the `qapi` crate's typed commands) on the VM's unix socket.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use qapi::{qmp, Qmp};

/// How long one QMP command may take before the VM counts as hung.
pub const QMP_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors talking QMP.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The socket never appeared or refused the connection.
    #[error("cannot connect to QMP socket {path}: {cause}")]
    Connect {
        /// Socket path.
        path: String,
        /// Last error.
        cause: std::io::Error,
    },
    /// A command failed or timed out.
    #[error("QMP {command} failed: {detail}")]
    Command {
        /// Command name.
        command: &'static str,
        /// What QEMU said, or the I/O error.
        detail: String,
    },
}

/// An NVDIMM as QEMU placed it in guest-physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvdimmRange {
    /// Guest-physical base address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

/// A connected, negotiated QMP session.
pub struct QmpClient {
    qmp: Qmp<qapi::Stream<std::io::BufReader<UnixStream>, UnixStream>>,
}

impl QmpClient {
    /// Connect to `path`, retrying until `deadline` (QEMU creates the socket shortly after
    /// it starts), and negotiate capabilities.
    pub fn connect(path: &Path, deadline: Instant) -> Result<Self, QmpError> {
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(QmpError::Connect {
                        path: path.display().to_string(),
                        cause: e,
                    })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(25)),
            }
        };
        let io_err = |e: std::io::Error| QmpError::Connect {
            path: path.display().to_string(),
            cause: e,
        };
        stream
            .set_read_timeout(Some(QMP_COMMAND_TIMEOUT))
            .map_err(io_err)?;
        let write_half = stream.try_clone().map_err(io_err)?;
        let mut qmp = Qmp::new(qapi::Stream::new(
            std::io::BufReader::new(stream),
            write_half,
        ));
        qmp.handshake().map_err(|e| QmpError::Command {
            command: "qmp_capabilities",
            detail: e.to_string(),
        })?;
        Ok(QmpClient { qmp })
    }

    fn run<C: qapi::Command + qmp::QmpCommand>(
        &mut self,
        name: &'static str,
        cmd: &C,
    ) -> Result<C::Ok, QmpError> {
        let res = self.qmp.execute(cmd).map_err(|e| QmpError::Command {
            command: name,
            detail: e.to_string(),
        });
        // Drop asynchronous events (STOP, RESUME, …) we do not use.
        self.qmp.events().for_each(drop);
        res
    }

    /// Pause the guest's CPUs.
    pub fn stop(&mut self) -> Result<(), QmpError> {
        self.run("stop", &qmp::stop {}).map(drop)
    }

    /// Resume the guest's CPUs.
    pub fn cont(&mut self) -> Result<(), QmpError> {
        self.run("cont", &qmp::cont {}).map(drop)
    }

    /// Is the guest running (not paused)?
    pub fn running(&mut self) -> Result<bool, QmpError> {
        self.run("query-status", &qmp::query_status {})
            .map(|s| s.running)
    }

    /// The run state QEMU reports (`running`, `paused`, `inmigrate`, `postmigrate`, …).
    pub fn run_state(&mut self) -> Result<qmp::RunState, QmpError> {
        self.run("query-status", &qmp::query_status {})
            .map(|s| s.status)
    }

    /// Turn on `x-ignore-shared`: RAM backed by a shared memory backend (the NVDIMM's
    /// `memory-backend-file,share=on`) stays out of the migration stream. Both sides of a
    /// migration must set it.
    pub fn ignore_shared_memory(&mut self) -> Result<(), QmpError> {
        let caps = qmp::migrate_set_capabilities {
            capabilities: vec![qmp::MigrationCapabilityStatus {
                capability: qmp::MigrationCapability::x_ignore_shared,
                state: true,
            }],
        };
        self.run("migrate-set-capabilities", &caps).map(drop)
    }

    /// Start an outgoing migration to `uri` (`file:PATH`); it runs in the background.
    pub fn migrate(&mut self, uri: &str) -> Result<(), QmpError> {
        let cmd = qmp::migrate {
            uri: Some(uri.to_owned()),
            channels: None,
            detach: None,
            resume: None,
        };
        self.run("migrate", &cmd).map(drop)
    }

    /// The outgoing migration's status, and QEMU's error text if it failed.
    pub fn migration_status(
        &mut self,
    ) -> Result<(Option<qmp::MigrationStatus>, Option<String>), QmpError> {
        self.run("query-migrate", &qmp::query_migrate {})
            .map(|i| (i.status, i.error_desc))
    }

    /// Load an incoming migration from `uri` (QEMU started with `-incoming defer`); it runs
    /// in the background (the run state leaves `inmigrate` when it is done).
    pub fn migrate_incoming(&mut self, uri: &str) -> Result<(), QmpError> {
        let cmd = qmp::migrate_incoming {
            uri: Some(uri.to_owned()),
            channels: None,
            exit_on_error: None,
        };
        self.run("migrate-incoming", &cmd).map(drop)
    }

    /// Ask QEMU to exit at once.
    pub fn quit(&mut self) -> Result<(), QmpError> {
        self.run("quit", &qmp::quit {}).map(drop)
    }

    /// Where the NVDIMM `id` sits in guest-physical memory.
    pub fn nvdimm(&mut self, id: &str) -> Result<NvdimmRange, QmpError> {
        let devs = self.run("query-memory-devices", &qmp::query_memory_devices {})?;
        devs.into_iter()
            .find_map(|d| match d {
                qmp::MemoryDeviceInfo::nvdimm(w) if w.data.id.as_deref() == Some(id) => {
                    Some(NvdimmRange {
                        base: w.data.addr as u64,
                        size: w.data.size as u64,
                    })
                }
                _ => None,
            })
            .ok_or(QmpError::Command {
                command: "query-memory-devices",
                detail: format!("no nvdimm with id {id}"),
            })
    }
}
