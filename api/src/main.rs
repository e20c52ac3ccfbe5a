//! The `gonggu` binary: parses arguments and hands over to the library, so every subcommand is
//! testable without spawning a process.

fn main() -> std::process::ExitCode {
    api::cli::main()
}
