//! Host utilities, the bottom floor beside [`crate::records`]: durable writes, block copies, content digests,
//! the child-process guard, running a tool, reading a log's tail and shell quoting. Nothing
//! here imports any other module of the harness.

pub mod blocks;
pub mod command;
pub mod digest;
pub mod fs;
pub mod logtail;
pub mod process;
pub mod shell;

pub use fs::{fsync_dir, is_disk_full_io, write_atomically};
pub use shell::shell_quote;
