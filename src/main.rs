//! The `airlock` binary: parse, run, print the error once, map it to the exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    airlock::cli::main()
}
