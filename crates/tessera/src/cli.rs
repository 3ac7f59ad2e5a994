//! Command-line parsing (clap) and dispatch to the commands.

use crate::config::{FileConfig, ServeSettings, DEFAULT_DATA_DIR, DEFAULT_LISTEN};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Tessera, the open-source Customer Data Platform.
#[derive(Parser, Debug)]
#[command(name = "tessera", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server: Tracking API, admin API and event debugger on one port.
    Serve(ServeArgs),
    /// Import historical events from a JSONL or CSV file through the Tracking API's validation.
    Import(crate::import::ImportArgs),
    /// Re-derive every profile from the event log into a fresh state (the server must be
    /// stopped).
    Replay(crate::replay::ReplayArgs),
    /// Benchmarks and load generators.
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
}

/// Options of `tessera serve`. Each flag can also come from a `TESSERA_*` variable or the
/// configuration file; flags win over the environment, which wins over the file.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML configuration file (keys: data_dir, listen, admin_token, log_format,
    /// queue_depth, dedup_capacity, and an `[identity]` table of identity rules).
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded store [default: ./tessera-data].
    #[arg(long, env = "TESSERA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TESSERA_LISTEN")]
    pub listen: Option<String>,
    /// Log format: `text` or `json` [default: text].
    #[arg(long, env = "TESSERA_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Appends that may wait for the next group commit before requests get 429 [default: 1024].
    #[arg(long, env = "TESSERA_QUEUE_DEPTH")]
    pub queue_depth: Option<usize>,
    /// Most messageIds remembered for deduplication (24 hours' worth, ~70 bytes each)
    /// [default: 10000000].
    #[arg(long, env = "TESSERA_DEDUP_CAPACITY")]
    pub dedup_capacity: Option<usize>,
}

impl ServeArgs {
    /// Layers flags/environment over the file over the defaults.
    pub fn resolve(&self) -> Result<ServeSettings, crate::config::ConfigError> {
        let file = FileConfig::load(self.config.as_deref())?;
        let identity = match self.config.as_deref() {
            Some(path) => file.identity_rules(path)?,
            None => Default::default(),
        };
        Ok(ServeSettings {
            data_dir: self
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            listen: self
                .listen
                .clone()
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            // Only from the environment or the file: a flag would leak into `ps`.
            admin_token: std::env::var("TESSERA_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .or(file.admin_token),
            log_format: self
                .log_format
                .clone()
                .or(file.log_format)
                .unwrap_or_else(|| "text".into()),
            queue_depth: self.queue_depth.or(file.queue_depth).unwrap_or(1024),
            dedup_capacity: self.dedup_capacity.or(file.dedup_capacity).unwrap_or(0),
            identity,
        })
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => args
            .resolve()
            .map_err(|e| e.to_string())
            .and_then(|s| crate::serve::run(s).map_err(|e| e.to_string())),
        Command::Import(args) => crate::import::run(args),
        Command::Replay(args) => crate::replay::run(args),
        Command::Bench(cmd) => crate::bench::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tessera: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let dir = std::env::temp_dir().join(format!("tessera-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\ndata_dir = \"/from/file\"\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "tessera",
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            "/from/flag",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let s = args.resolve().unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(s.listen, "127.0.0.1:9999");
        assert_eq!(s.queue_depth, 1024);
    }
}
