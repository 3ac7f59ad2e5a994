//! Authentication: write keys for the Tracking API, Bearer tokens for the admin API.

use crate::error::ApiError;
use crate::state::AppState;
use axum::http::{header, HeaderMap};
use base64::Engine;
use sha2::{Digest, Sha256};
use tessera_store::{Token, Workspace};

/// Scopes a token can carry.
pub const SCOPE_ADMIN: &str = "admin";
pub const SCOPE_READ: &str = "read";
pub const KNOWN_SCOPES: [&str; 2] = [SCOPE_ADMIN, SCOPE_READ];

/// The write key of a Tracking API request: the user name of HTTP Basic auth.
pub fn basic_auth_user(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split(':').next().unwrap_or("").to_string();
    (!user.is_empty()).then_some(user)
}

/// SHA-256 of a token secret, hex-encoded: what the store keeps instead of the secret.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A caller of the admin API, after its token was checked.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: Token,
}

impl Caller {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.token
            .scopes
            .iter()
            .any(|s| s == SCOPE_ADMIN || s == scope)
    }

    /// Fails unless the token may change things.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.has_scope(SCOPE_ADMIN) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "this token may read but not change anything",
            ))
        }
    }

    /// Fails unless the token is not limited to one workspace (workspace and token management).
    pub fn require_global_admin(&self) -> Result<(), ApiError> {
        self.require_admin()?;
        if self.token.workspace_id.is_some() {
            return Err(ApiError::forbidden(
                "this token is limited to one workspace; use an instance-wide admin token",
            ));
        }
        Ok(())
    }
}

/// Checks the Bearer token of an admin or Profile API request.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::unauthorized("missing_token", "send `Authorization: Bearer <token>`")
        })?;
    let secret = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized("missing_token", "send `Authorization: Bearer <token>`")
        })?;
    let token = state
        .store
        .token_by_hash(&hash_secret(secret))?
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "unknown or revoked token"))?;
    Ok(Caller { token })
}

/// The workspace a request acts on: the `Tessera-Workspace` header or `workspace` query
/// parameter, else the token's own workspace, else the default one. A workspace the token may
/// not see answers 404, exactly like one that does not exist, so ids cannot be probed.
pub fn resolve_workspace(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    query_workspace: Option<&str>,
) -> Result<Workspace, ApiError> {
    let asked = headers
        .get("tessera-workspace")
        .and_then(|v| v.to_str().ok())
        .or(query_workspace)
        .map(str::to_string);
    let id = asked
        .or_else(|| caller.token.workspace_id.clone())
        .unwrap_or_else(|| state.default_workspace.clone());
    if let Some(own) = &caller.token.workspace_id {
        if own != &id {
            return Err(ApiError::not_found(&format!("workspace {id}")));
        }
    }
    state
        .store
        .get_workspace(&id)?
        .ok_or_else(|| ApiError::not_found(&format!("workspace {id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_key_is_the_basic_auth_user_name() {
        let mut h = HeaderMap::new();
        // base64("wk_123:")
        h.insert(header::AUTHORIZATION, "Basic d2tfMTIzOg==".parse().unwrap());
        assert_eq!(basic_auth_user(&h).as_deref(), Some("wk_123"));
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(basic_auth_user(&h), None);
    }

    #[test]
    fn secrets_hash_to_hex_sha256() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
