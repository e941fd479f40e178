//! The exit codes of every command (stable, documented in the README), at the bottom so
//! that the use cases can say which status an outcome has; only
//! [`crate::error::Error::exit_code`] and the outcomes' own `exit_code` choose among them.

/// Everything passed.
pub const PASS: i32 = 0;
/// A durability failure (kernel bug) was found.
pub const FAILURE: i32 = 1;
/// Bad usage or bad input (config, workload file).
pub const USAGE: i32 = 2;
/// An expected failure (`expect:`) did not come, on a kernel without infrastructure
/// problems.
pub const UNMET: i32 = 3;
/// Infrastructure failure (QEMU, kernel, image, SSH): nothing was proven either way.
pub const INFRA: i32 = 69;
/// Interrupted (SIGINT/SIGTERM).
pub const INTERRUPTED: i32 = 130;
