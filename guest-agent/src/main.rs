//! `powercut-agent`: the command line of the guest agent (a thin shell over the library).
//!
//! Exit codes: 0 success (including `Quit` or end of input in `serve`), 1 the host stream
//! failed (stdin/stdout I/O error), 2 bad command line.

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

const USAGE: &str = "\
usage: powercut-agent serve       speak the powercut protocol on stdin/stdout
       powercut-agent --version   print agent and protocol versions";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let args: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().unwrap_or("\u{fffd}"))
        .collect();
    match args.as_slice() {
        ["--version"] | ["-V"] => {
            println!("{}", guest_agent::version_line());
            ExitCode::SUCCESS
        }
        ["--help"] | ["-h"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        ["serve"] => {
            let stdin = io::stdin().lock();
            let stdout = io::stdout().lock();
            match guest_agent::serve::serve(stdin, stdout) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("powercut-agent: lost the host stream: {e}");
                    ExitCode::from(1)
                }
            }
        }
        _ => {
            let _ = writeln!(
                io::stderr(),
                "powercut-agent: unknown arguments {args:?}\n{USAGE}"
            );
            ExitCode::from(2)
        }
    }
}
