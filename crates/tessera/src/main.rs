//! The `tessera` command: see `tessera --help`.

fn main() -> std::process::ExitCode {
    tessera::cli::main()
}
