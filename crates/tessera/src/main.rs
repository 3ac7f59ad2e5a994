//! The `tessera` command: see `tessera --help`.

// mimalloc: ingest allocates many small JSON values per event, and glibc's malloc/free were
// 15% of the server's CPU in the ingest profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tessera::cli::main()
}
