//! The `tessera` binary's library: command-line parsing, configuration layering, and the
//! `serve`, `import` and `bench` commands. Integration tests use its small HTTP client.

pub mod bench;
pub mod cli;
pub mod config;
pub mod import;
pub mod minihttp;
pub mod serve;
