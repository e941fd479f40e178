//! The one error of a command and the one map from errors to exit codes
//! ([`Error::exit_code`]). Every command returns its outcome's code or an [`Error`]; `main`
//! prints the error and exits with its code. Nothing else decides an exit code.

use crate::campaign::CampaignError;
use crate::image::kernel::KernelSpecError;
use crate::image::ImageError;
use crate::prepare::PrepareError;
use crate::report::ReportError;

pub use crate::exit;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage or input, found by the command itself; the message names it.
    #[error("{0}")]
    Usage(String),
    /// Bad input found deep inside a step (a kernel that cannot be used as given, a
    /// kernel config that lacks an option).
    #[error(transparent)]
    BadInput(anyhow::Error),
    /// The machine failed (QEMU, image, SSH, host I/O).
    #[error(transparent)]
    Infra(anyhow::Error),
    /// A campaign could not go on.
    #[error(transparent)]
    Campaign(#[from] CampaignError),
    /// A kernel could not be prepared for a triage command or a benchmark.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// A run directory's reports could not be read or written.
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl Error {
    /// The exit code of a command that failed with this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::BadInput(_) => exit::USAGE,
            Error::Infra(_) => exit::INFRA,
            Error::Campaign(e) => match e {
                CampaignError::Usage(_) | CampaignError::Journal(_) => exit::USAGE,
                CampaignError::Prepare(p) => prepare_code(p),
                CampaignError::RunDir(_)
                | CampaignError::Record { .. }
                | CampaignError::Report { .. }
                | CampaignError::Fatal(_) => exit::INFRA,
                CampaignError::Abandoned => exit::INTERRUPTED,
            },
            Error::Prepare(p) => prepare_code(p),
            Error::Report(e) if e.is_bad_input() => exit::USAGE,
            Error::Report(_) => exit::INFRA,
        }
    }

    /// The message `main` prints after `error: `: the error and its causes, `: `-joined.
    pub fn message(&self) -> String {
        let mut msg = format!("{self:#}");
        if let Error::BadInput(_) | Error::Infra(_) = self {
            // anyhow's alternate form already holds the chain.
            return msg;
        }
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        msg
    }
}

fn prepare_code(p: &PrepareError) -> i32 {
    if p.is_bad_input() {
        exit::USAGE
    } else {
        exit::INFRA
    }
}

/// An error with context from a step: bad input when the chain holds a kernel that cannot
/// be used as given or a missing config option, else the machine's failure.
impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        let bad_input = e.chain().any(|c| {
            c.downcast_ref::<ImageError>()
                .is_some_and(ImageError::is_bad_input)
                || c.downcast_ref::<KernelSpecError>().is_some()
                || c.downcast_ref::<PrepareError>()
                    .is_some_and(PrepareError::is_bad_input)
        });
        if bad_input {
            Error::BadInput(e)
        } else {
            Error::Infra(e)
        }
    }
}

impl From<KernelSpecError> for Error {
    fn from(e: KernelSpecError) -> Self {
        Error::Usage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::KernelSpec;
    use anyhow::Context;

    #[test]
    fn kernel_input_errors_exit_2_and_machine_errors_69() {
        let bad_spec: anyhow::Result<()> = Err(KernelSpec::parse("a.deb,tree").expect_err("bad"))
            .context("building the guest image");
        let bad_config: anyhow::Result<()> = Err(ImageError::KernelConfig {
            kernel: "6.13.0".into(),
            config: "/src/linux/.config".into(),
            missing: vec!["CONFIG_FS_DAX=y is needed".into()],
        })
        .context("building the guest image");
        let no_cpio: anyhow::Result<()> = Err(ImageError::Tool {
            tool: "cpio".into(),
            detail: "not found".into(),
        })
        .context("building the guest image");

        let codes: Vec<i32> = [bad_spec, bad_config, no_cpio]
            .into_iter()
            .map(|r| Error::from(r.expect_err("an error")).exit_code())
            .collect();

        assert_eq!(codes, [exit::USAGE, exit::USAGE, exit::INFRA]);
    }

    #[test]
    fn a_kernel_that_cannot_be_prepared_is_bad_input_and_a_fatal_stop_infra() {
        let bad = Error::Campaign(CampaignError::Prepare(PrepareError::Image {
            what: "building the guest image",
            source: ImageError::KernelConfig {
                kernel: "6.13.0".into(),
                config: "/src/linux/.config".into(),
                missing: vec!["CONFIG_FS_DAX=y is needed".into()],
            },
        }));
        let fatal = Error::Campaign(CampaignError::Fatal("journal.jsonl: disk full".into()));

        assert_eq!(bad.exit_code(), exit::USAGE);
        assert!(
            bad.message().starts_with("building the guest image: "),
            "{}",
            bad.message()
        );
        assert_eq!(fatal.exit_code(), exit::INFRA);
        assert_eq!(
            fatal.message(),
            "the campaign stopped: journal.jsonl: disk full"
        );
    }
}
