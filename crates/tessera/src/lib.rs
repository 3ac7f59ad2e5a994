//! The `tessera` binary's library: command-line parsing, configuration layering, and the
//! `serve`, `import`, `replay` and `bench` commands. Integration tests use its small HTTP client.

pub mod bench;
pub mod bench_delivery;
pub mod bench_identity;
pub mod bench_profiles;
pub mod bench_realtime;
pub mod bench_segments;
pub mod cli;
pub mod config;
pub mod datalock;
pub mod import;
pub mod minihttp;
pub mod receiver;
pub mod replay;
pub mod serve;
