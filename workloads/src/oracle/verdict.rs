//! The verdict of one crash check: kernel-bug verdicts found by the oracle or the checker,
//! and infrastructure verdicts that never count against the kernel.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Outcome of checking one crash state (or of failing to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every file matches the oracle.
    Pass,
    /// Bytes hold a value the oracle does not allow (a promised write was lost, or garbage).
    DataLoss,
    /// A file's size is not one the oracle allows.
    SizeLoss,
    /// A file that must exist is missing.
    MissingFile,
    /// A file that must not exist (durably unlinked or renamed away) is present.
    UnexpectedFile,
    /// A file's mode, times or xattrs hold a value the oracle does not allow.
    MetadataLoss,
    /// fsck found the recovered file system inconsistent.
    FsCorrupt,
    /// The crash image could not be mounted (journal recovery failed).
    MountFailed,
    /// Infrastructure: the VM did not boot.
    BootFailed,
    /// Infrastructure: the guest kernel panicked.
    GuestPanic,
    /// Infrastructure: the agent stopped answering.
    AgentLost,
    /// Infrastructure: a step ran out of time.
    Timeout,
}

impl Verdict {
    /// Every verdict, in declaration order.
    pub const ALL: [Verdict; 12] = [
        Verdict::Pass,
        Verdict::DataLoss,
        Verdict::SizeLoss,
        Verdict::MissingFile,
        Verdict::UnexpectedFile,
        Verdict::MetadataLoss,
        Verdict::FsCorrupt,
        Verdict::MountFailed,
        Verdict::BootFailed,
        Verdict::GuestPanic,
        Verdict::AgentLost,
        Verdict::Timeout,
    ];

    /// Stable name, as serialized (`data-loss`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::DataLoss => "data-loss",
            Verdict::SizeLoss => "size-loss",
            Verdict::MissingFile => "missing-file",
            Verdict::UnexpectedFile => "unexpected-file",
            Verdict::MetadataLoss => "metadata-loss",
            Verdict::FsCorrupt => "fs-corrupt",
            Verdict::MountFailed => "mount-failed",
            Verdict::BootFailed => "boot-failed",
            Verdict::GuestPanic => "guest-panic",
            Verdict::AgentLost => "agent-lost",
            Verdict::Timeout => "timeout",
        }
    }

    /// Does this verdict accuse the kernel under test? Infrastructure verdicts never do.
    pub fn is_kernel_bug(&self) -> bool {
        matches!(
            self,
            Verdict::DataLoss
                | Verdict::SizeLoss
                | Verdict::MissingFile
                | Verdict::UnexpectedFile
                | Verdict::MetadataLoss
                | Verdict::FsCorrupt
                | Verdict::MountFailed
        )
    }

    /// Is this an infrastructure verdict (the run says nothing about the kernel)?
    pub fn is_infrastructure(&self) -> bool {
        matches!(
            self,
            Verdict::BootFailed | Verdict::GuestPanic | Verdict::AgentLost | Verdict::Timeout
        )
    }

    /// Rank used to pick one verdict out of several findings: the lower, the more telling.
    pub(crate) fn severity_rank(&self) -> usize {
        match self {
            Verdict::MissingFile => 0,
            Verdict::UnexpectedFile => 1,
            Verdict::DataLoss => 2,
            Verdict::SizeLoss => 3,
            Verdict::MetadataLoss => 4,
            _ => 5,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A verdict name that is not one of [`Verdict::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown verdict `{0}`; valid: pass, data-loss, size-loss, missing-file, unexpected-file, metadata-loss, fs-corrupt, mount-failed, boot-failed, guest-panic, agent-lost, timeout")]
pub struct UnknownVerdict(pub String);

impl FromStr for Verdict {
    type Err = UnknownVerdict;
    fn from_str(s: &str) -> Result<Verdict, UnknownVerdict> {
        Verdict::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| UnknownVerdict(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for v in Verdict::ALL {
            let json = serde_json::to_string(&v).expect("serialize");
            assert_eq!(json, format!("\"{}\"", v.name()));
            assert_eq!(v.name().parse::<Verdict>(), Ok(v));
            assert!(!(v.is_kernel_bug() && v.is_infrastructure()));
        }
        assert!(!Verdict::Pass.is_kernel_bug());
        assert!(!Verdict::Timeout.is_kernel_bug());
        assert!(Verdict::DataLoss.is_kernel_bug());
    }
}
