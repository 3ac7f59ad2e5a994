//! First-start set-up: the default workspace and the bootstrap admin token.

use crate::auth::{hash_secret, SCOPE_ADMIN};
use crate::ids::random_id;
use crate::state::now_millis;
use tessera_store::{Store, StoreError, Token, Workspace};

/// Id of the workspace created on first start.
pub const DEFAULT_WORKSPACE: &str = "default";
const BOOTSTRAP_TOKEN_ID: &str = "tok_bootstrap";

/// What bootstrapping did, for the start-up message.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminToken {
    /// `TESSERA_ADMIN_TOKEN` was given and is now the bootstrap token.
    FromEnvironment,
    /// A token was generated now; its secret is shown this once.
    Generated(String),
    /// The token generated on an earlier start stays valid.
    Existing,
}

/// Creates the default workspace if missing and installs the bootstrap admin token: the one
/// given (replacing an earlier one), else a generated one on first start only.
pub fn bootstrap(store: &dyn Store, given_token: Option<&str>) -> Result<AdminToken, StoreError> {
    if store.get_workspace(DEFAULT_WORKSPACE)?.is_none() {
        store.create_workspace(&Workspace {
            id: DEFAULT_WORKSPACE.into(),
            name: "Default".into(),
            created_at: now_millis(),
        })?;
    }
    let existing = store
        .list_tokens()?
        .into_iter()
        .any(|t| t.id == BOOTSTRAP_TOKEN_ID);
    let token = Token {
        id: BOOTSTRAP_TOKEN_ID.into(),
        workspace_id: None,
        scopes: vec![SCOPE_ADMIN.into()],
        name: "bootstrap admin".into(),
        created_at: now_millis(),
    };
    match given_token.filter(|t| !t.is_empty()) {
        Some(secret) => {
            if store.token_by_hash(&hash_secret(secret))?.is_none() {
                store.delete_token(BOOTSTRAP_TOKEN_ID)?;
                store.create_token(&token, &hash_secret(secret))?;
            }
            Ok(AdminToken::FromEnvironment)
        }
        None if existing => Ok(AdminToken::Existing),
        None => {
            let secret = random_id("tsk_", 40);
            store.create_token(&token, &hash_secret(&secret))?;
            Ok(AdminToken::Generated(secret))
        }
    }
}
