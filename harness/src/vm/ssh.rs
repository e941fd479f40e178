//! SSH to the guest's dropbear (ssh2 crate): one session per VM, commands with timeouts,
//! and the line-delimited JSON channel to the guest agent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use workloads::protocol::{AgentMsg, HostMsg};

/// Errors of the SSH transport.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// TCP connect, handshake or authentication failed.
    #[error("ssh to {addr}: {detail}")]
    Connect {
        /// Address.
        addr: SocketAddr,
        /// What failed.
        detail: String,
    },
    /// A channel operation failed (includes timeouts: the session has a timeout).
    #[error("ssh `{command}`: {detail}")]
    Channel {
        /// Remote command.
        command: String,
        /// What failed.
        detail: String,
    },
    /// The agent sent something that is not a protocol message.
    #[error("agent sent a bad line ({detail}): {line}")]
    Protocol {
        /// The line.
        line: String,
        /// Parse error.
        detail: String,
    },
    /// The agent closed its output.
    #[error("agent exited (end of output)")]
    AgentGone,
}

/// Output of a finished remote command.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    /// Exit status.
    pub status: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// An authenticated SSH session to a guest.
pub struct SshSession {
    session: ssh2::Session,
    addr: SocketAddr,
}

impl SshSession {
    /// Connect to `127.0.0.1:port` as root with `key`; each blocking call then times out
    /// after `timeout`.
    pub fn connect(port: u16, key: &Path, timeout: Duration) -> Result<Self, SshError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let err = |detail: String| SshError::Connect { addr, detail };
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| err(e.to_string()))?;
        let mut session = ssh2::Session::new().map_err(|e| err(e.to_string()))?;
        session.set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
        session.set_tcp_stream(tcp);
        session
            .handshake()
            .map_err(|e| err(format!("handshake: {e}")))?;
        session
            .userauth_pubkey_file("root", None, key, None)
            .map_err(|e| err(format!("public key auth with {}: {e}", key.display())))?;
        Ok(SshSession { session, addr })
    }

    /// Change the per-call timeout.
    pub fn set_timeout(&self, timeout: Duration) {
        self.session
            .set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
    }

    /// Open a session channel running `command`.
    fn start(&self, command: &str) -> Result<ssh2::Channel, SshError> {
        let cerr = |detail: String| SshError::Channel {
            command: command.to_owned(),
            detail,
        };
        let mut ch = self
            .session
            .channel_session()
            .map_err(|e| cerr(e.to_string()))?;
        ch.exec(command).map_err(|e| cerr(e.to_string()))?;
        Ok(ch)
    }

    /// Run `command` (through the guest's `sh -c`) and collect its output.
    pub fn exec(&self, command: &str) -> Result<CommandOutput, SshError> {
        let cerr = |detail: String| SshError::Channel {
            command: command.to_owned(),
            detail,
        };
        let mut ch = self.start(command)?;
        let mut stdout = String::new();
        ch.read_to_string(&mut stdout)
            .map_err(|e| cerr(format!("reading stdout: {e}")))?;
        let mut stderr = String::new();
        ch.stderr()
            .read_to_string(&mut stderr)
            .map_err(|e| cerr(format!("reading stderr: {e}")))?;
        ch.wait_close().map_err(|e| cerr(e.to_string()))?;
        let status = ch.exit_status().map_err(|e| cerr(e.to_string()))?;
        Ok(CommandOutput {
            status,
            stdout,
            stderr,
        })
    }

    /// Run `command` and fail unless it exits 0.
    pub fn run_ok(&self, command: &str) -> Result<String, SshError> {
        let out = self.exec(command)?;
        if out.status == 0 {
            Ok(out.stdout)
        } else {
            Err(SshError::Channel {
                command: command.to_owned(),
                detail: format!("exit status {}: {}", out.status, out.stderr.trim()),
            })
        }
    }

    /// Copy `bytes` to the guest file `remote` and make it executable: `cat` on the guest
    /// reads them from the channel (the guest has no SCP server).
    pub fn upload(&self, bytes: &[u8], remote: &str) -> Result<(), SshError> {
        let quoted = crate::host::shell_quote(remote);
        let command = format!("cat > {quoted} && chmod 755 {quoted}");
        let cerr = |detail: String| SshError::Channel {
            command: command.clone(),
            detail,
        };
        let mut ch = self.start(&command)?;
        ch.write_all(bytes).map_err(|e| cerr(e.to_string()))?;
        ch.send_eof().map_err(|e| cerr(e.to_string()))?;
        let mut stderr = String::new();
        ch.stderr()
            .read_to_string(&mut stderr)
            .map_err(|e| cerr(format!("reading stderr: {e}")))?;
        ch.wait_close().map_err(|e| cerr(e.to_string()))?;
        match ch.exit_status().map_err(|e| cerr(e.to_string()))? {
            0 => Ok(()),
            st => Err(cerr(format!("exit status {st}: {}", stderr.trim()))),
        }
    }

    /// Start the guest agent (`command`, e.g. `powercut-agent serve`) and return its channel.
    pub fn agent(&self, command: &str) -> Result<AgentChannel, SshError> {
        let ch = self.start(command)?;
        let writer = ch.stream(0);
        Ok(AgentChannel {
            reader: BufReader::new(ch.stream(0)),
            writer,
            _channel: ch,
            command: command.to_owned(),
        })
    }

    /// Address connected to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Line-delimited JSON channel to a running guest agent.
pub struct AgentChannel {
    reader: BufReader<ssh2::Stream>,
    writer: ssh2::Stream,
    _channel: ssh2::Channel,
    command: String,
}

impl AgentChannel {
    /// Send one message.
    pub fn send(&mut self, msg: &HostMsg) -> Result<(), SshError> {
        let mut line = serde_json::to_string(msg).map_err(|e| SshError::Channel {
            command: self.command.clone(),
            detail: e.to_string(),
        })?;
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .and_then(|()| self.writer.flush())
            .map_err(|e| SshError::Channel {
                command: self.command.clone(),
                detail: format!("sending to agent: {e}"),
            })
    }

    /// Receive one message (blocks up to the session timeout).
    pub fn recv(&mut self) -> Result<AgentMsg, SshError> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| SshError::Channel {
                command: self.command.clone(),
                detail: format!("reading from agent: {e}"),
            })?;
        if n == 0 {
            return Err(SshError::AgentGone);
        }
        serde_json::from_str(line.trim_end()).map_err(|e| SshError::Protocol {
            line: line.trim_end().to_owned(),
            detail: e.to_string(),
        })
    }
}
