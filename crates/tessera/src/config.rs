//! Configuration layering: built-in defaults, then the TOML file given with `--config`, then
//! `TESSERA_*` environment variables, then command-line flags (each overriding the one before).
//! clap resolves flags and environment; this module fills the rest from the file and defaults.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use tessera_core::identity::IdentityRules;

/// The `[server]`-less flat TOML file. Unknown keys are refused so a typo is not ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub admin_token: Option<String>,
    pub log_format: Option<String>,
    pub queue_depth: Option<usize>,
    pub dedup_capacity: Option<usize>,
    /// Identity rules for workspaces that have none set through the admin API.
    pub identity: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        file.identity_rules(path)?;
        Ok(file)
    }

    /// The `[identity]` table as rules (the defaults when it is absent).
    pub fn identity_rules(&self, path: &Path) -> Result<IdentityRules, ConfigError> {
        match &self.identity {
            None => Ok(IdentityRules::default()),
            Some(v) => IdentityRules::from_json(v).map_err(|e| ConfigError::Parse {
                path: path.display().to_string(),
                message: format!("[identity] {e}"),
            }),
        }
    }
}

pub const DEFAULT_DATA_DIR: &str = "./tessera-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Settings of `tessera serve` after layering.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub data_dir: PathBuf,
    pub listen: String,
    pub admin_token: Option<String>,
    pub log_format: String,
    pub queue_depth: usize,
    /// Zero: the store's default.
    pub dedup_capacity: usize,
    /// Identity rules of workspaces without rules of their own.
    pub identity: IdentityRules,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_config_refuses_unknown_keys_naming_them() {
        let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.toml");
        std::fs::write(&p, "listen = \"0.0.0.0:9000\"\ndata_dri = \"x\"\n").unwrap();
        let err = FileConfig::load(Some(&p)).unwrap_err().to_string();
        assert!(err.contains("data_dri"), "{err}");
        std::fs::write(&p, "listen = \"0.0.0.0:9000\"\n").unwrap();
        assert_eq!(
            FileConfig::load(Some(&p)).unwrap().listen.as_deref(),
            Some("0.0.0.0:9000")
        );
    }

    #[test]
    fn the_identity_table_gives_rules_and_its_errors_name_the_field() {
        let dir = std::env::temp_dir().join(format!("tessera-cfg-id-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.toml");
        std::fs::write(
            &p,
            "[identity]\nmax_merges = 20\n[identity.identifiers.email]\nlimit = 1\n\
             [identity.identifiers.crm_id]\npriority = 3\nlimit = 1\ntrait = \"crm.id\"\n",
        )
        .unwrap();
        let rules = FileConfig::load(Some(&p))
            .unwrap()
            .identity_rules(&p)
            .unwrap();
        assert_eq!(rules.max_merges, 20);
        assert_eq!(rules.rule("email").unwrap().limit, 1);
        assert_eq!(
            rules.rule("crm_id").unwrap().trait_path.as_deref(),
            Some("crm.id")
        );
        std::fs::write(&p, "[identity.identifiers.email]\nlimt = 1\n").unwrap();
        let err = FileConfig::load(Some(&p)).unwrap_err().to_string();
        assert!(err.contains("identifiers.email.limt"), "{err}");
        assert!(err.contains("t.toml"), "{err}");
    }
}
