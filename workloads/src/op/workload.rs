//! What a workload's ops are as a sequence: the open flag each `pwrite` goes through, each
//! op's label, and which ops are durability points and crash points.

use super::{Op, OpenSync, RenameFlag, Workload};

impl Workload {
    /// For each op, the open flag of the descriptor it would go through if it is a `pwrite`
    /// (else [`OpenSync::None`]): the flag of the last `create`/`open` of its name, followed
    /// through renames, forgotten at `close`/`unlink`. Read from the ops alone, as the agent
    /// would hold them if every op succeeded; the oracle keeps its own table from the
    /// outcomes, so an open that failed only costs a crash point here.
    pub fn pwrite_sync(&self) -> Vec<OpenSync> {
        let mut held: std::collections::BTreeMap<&str, OpenSync> = Default::default();
        self.ops
            .iter()
            .map(|op| match op {
                Op::Create { file, sync, .. } | Op::Open { file, sync, .. } => {
                    held.insert(file, *sync);
                    OpenSync::None
                }
                Op::Close { file } | Op::Unlink { file } => {
                    held.remove(file.as_str());
                    OpenSync::None
                }
                Op::Rename { from, to } | Op::Renameat2 { from, to, .. } if from != to => {
                    let exchange = matches!(
                        op,
                        Op::Renameat2 {
                            flags: RenameFlag::Exchange,
                            ..
                        }
                    );
                    let moved_back = held.remove(to.as_str()).filter(|_| exchange);
                    if let Some(s) = held.remove(from.as_str()) {
                        held.insert(to, s);
                    }
                    if let Some(s) = moved_back {
                        held.insert(from, s);
                    }
                    OpenSync::None
                }
                Op::Pwrite { file, .. }
                | Op::UringWrite {
                    file, flags: None, ..
                } => held.get(file.as_str()).copied().unwrap_or_default(),
                _ => OpenSync::None,
            })
            .collect()
    }

    /// Labels of every op ([`Op::label`]), a `pwrite` through an `O_DSYNC`/`O_SYNC`
    /// descriptor as `pwrite o_dsync`/`pwrite o_sync`.
    pub fn labels(&self) -> Vec<String> {
        self.ops
            .iter()
            .zip(self.pwrite_sync())
            .map(|(op, s)| match op {
                Op::Pwrite { .. } => s.pwrite_label().to_string(),
                Op::UringWrite { flags: None, .. } if !s.is_none() => {
                    format!("uring_write o_{}", s.name())
                }
                other => other.label(),
            })
            .collect()
    }

    /// Label of op `k` (see [`Workload::labels`]); empty past the end.
    pub fn label(&self, k: usize) -> String {
        self.labels().get(k).cloned().unwrap_or_default()
    }

    /// Which ops are durability points ([`Op::is_durability_point`], and a `pwrite` through
    /// an `O_DSYNC`/`O_SYNC` descriptor).
    pub fn durability_points(&self) -> Vec<bool> {
        self.ops
            .iter()
            .zip(self.pwrite_sync())
            .map(|(op, s)| op.is_durability_point() || !s.is_none())
            .collect()
    }

    /// After which ops the campaign puts a crash point ([`Op::wants_crash_point_after`],
    /// and a `pwrite` through an `O_DSYNC`/`O_SYNC` descriptor).
    pub fn crash_point_after(&self) -> Vec<bool> {
        self.ops
            .iter()
            .zip(self.pwrite_sync())
            .map(|(op, s)| op.wants_crash_point_after() || !s.is_none())
            .collect()
    }
}
