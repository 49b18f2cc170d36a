//! What a client presents to a server with `--auth token`, and which certificate it trusts
//! for `https://` servers: `--token` / `SWITCHBOARD_TOKEN` and `--ca-cert` /
//! `SWITCHBOARD_CA_CERT`. Shared by the agent tools and the operator commands (`stats`,
//! `discover`, `migrate`, `tmux-send`).

use std::path::PathBuf;

use clap::Args;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

/// Token and trusted CA of a client.
#[derive(Debug, Clone, Default, Args)]
pub struct Credentials {
    /// Bearer token for a server started with `--auth token`: your agent's token (printed by
    /// `switchboard register`), or the admin token for system operations.
    #[arg(
        long,
        env = "SWITCHBOARD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// PEM file of a CA certificate to trust for an https:// server (e.g. its self-signed
    /// certificate), besides the system's roots.
    #[arg(long, env = "SWITCHBOARD_CA_CERT", value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
}

impl Credentials {
    /// `builder` sending the token on every request and trusting the CA certificate. Errors
    /// are a sentence saying what to fix.
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, String> {
        let mut builder = builder;
        if let Some(token) = self
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                "the token (--token or SWITCHBOARD_TOKEN) holds characters a header cannot \
                 carry; copy it again exactly as printed"
                    .to_string()
            })?;
            value.set_sensitive(true);
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value);
            builder = builder.default_headers(headers);
        }
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path).map_err(|error| {
                format!(
                    "cannot read the CA certificate {} (--ca-cert or SWITCHBOARD_CA_CERT): \
                     {error}",
                    path.display()
                )
            })?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(|error| {
                format!(
                    "{} (--ca-cert or SWITCHBOARD_CA_CERT) is not a PEM certificate: {error}",
                    path.display()
                )
            })?;
            builder = builder.add_root_certificate(certificate);
        }
        Ok(builder)
    }
}
