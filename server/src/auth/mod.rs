//! Authentication (`serve --auth token`): agents and the admin prove who they are with bearer
//! tokens, and every route has a rule saying who may call it.
//!
//! - [`tokens`]: making tokens, hashing them (SHA-256), comparing hashes in constant time,
//!   reading the token a request presents.
//! - [`admin`]: the admin token, given or generated once (only its hash is kept).
//! - [`rules`]: the table mapping every route to its rule (open, any token, admin, the agent's
//!   own token).
//! - [`guard`]: the middleware applying that table to every request, and the [`Caller`]
//!   extractor.
//! - [`exposure`]: refusing to listen beyond loopback without authentication.
//!
//! Agent tokens are issued by registration and their hashes kept in the agent's registry
//! record, so they survive restarts on every storage backend. See `docs/security.md`.

pub mod admin;
pub mod exposure;
pub mod guard;
pub mod rules;
pub mod tokens;

use std::path::Path;

use clap::{Args, ValueEnum};

pub use guard::{guard, Caller};
pub use tokens::TokenHash;

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Nobody is checked: for a server only this machine can reach.
    #[default]
    None,
    /// Bearer tokens: each agent's own, and the admin's.
    Token,
}

/// Authentication flags of `switchboard serve`.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// `none` (no checks; refused on non-loopback addresses unless --insecure) or `token`
    /// (agents and the admin send `Authorization: Bearer TOKEN`).
    #[arg(long, env = "SWITCHBOARD_AUTH", value_enum, default_value_t = AuthMode::None)]
    pub auth: AuthMode,
    /// The admin token (at least 16 bytes). Default: generated at the first start in token
    /// mode, printed once, and its hash kept in WORKDIR/.switchboard/admin-token.sha256.
    #[arg(
        long,
        env = "SWITCHBOARD_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,
    /// Listen on a non-loopback address with `--auth none` anyway (anyone who can reach the
    /// port can read and send every agent's messages).
    #[arg(long)]
    pub insecure: bool,
}

/// The authentication settings handlers read.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// The mode.
    pub mode: AuthMode,
    /// The admin token's hash (always set in token mode).
    pub admin: Option<TokenHash>,
}

impl AuthSettings {
    /// Token mode with this admin token (for tests).
    pub fn token_mode(admin_token: &str) -> Self {
        Self {
            mode: AuthMode::Token,
            admin: Some(TokenHash::of(admin_token)),
        }
    }
}

/// The settings for `args`: in token mode, the admin token's hash (generating and printing a
/// token on stderr at the first start in `workdir`). Errors are one paragraph.
pub fn prepare(args: &AuthArgs, workdir: &Path) -> Result<AuthSettings, String> {
    if args.auth == AuthMode::None {
        if args.admin_token.is_some() {
            tracing::warn!("--admin-token is ignored with --auth none");
        }
        return Ok(AuthSettings::default());
    }
    let source = match &args.admin_token {
        Some(token) => admin::AdminSource::Given(token),
        None => admin::AdminSource::Workdir(workdir),
    };
    let hash = admin::admin_hash(source, |token, path| {
        eprintln!("{}", admin::announcement(token, path));
    })?;
    Ok(AuthSettings {
        mode: AuthMode::Token,
        admin: Some(hash),
    })
}

#[cfg(test)]
mod tests;
