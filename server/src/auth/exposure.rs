//! The rule that a server without authentication listens on loopback only: with `--auth none`,
//! anyone who can reach the port can read, ack and send every agent's messages.

use super::AuthMode;

/// Refuses (with one paragraph saying why and what to do) to listen on `address` when it
/// resolves to any non-loopback address while `mode` is `none`, unless `insecure`; with
/// `insecure` it logs a warning instead.
pub async fn check(address: &str, mode: AuthMode, insecure: bool) -> Result<(), String> {
    if mode != AuthMode::None {
        return Ok(());
    }
    let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host(address)
        .await
        .map_err(|error| {
            format!(
                "switchboard: cannot resolve the listening address {address}: {error}. Check \
                 --api-host (or API_HOST)."
            )
        })?
        .collect();
    let Some(exposed) = resolved.iter().find(|socket| !socket.ip().is_loopback()) else {
        return Ok(());
    };
    if insecure {
        tracing::warn!(
            address = %exposed,
            "listening beyond loopback WITHOUT authentication (--insecure): anyone who can reach \
             this port can read and send every agent's messages"
        );
        return Ok(());
    }
    Err(format!(
        "switchboard: refusing to listen on {address} ({}) without authentication. That address \
         is reachable from other machines, and with --auth none anyone who can reach the port \
         could read, acknowledge and send every agent's messages and change the queues. Start \
         with --auth token (or SWITCHBOARD_AUTH=token) so that agents and the admin must present \
         tokens (add --tls-cert and --tls-key so tokens do not cross the network in clear text), \
         or listen on loopback only with --api-host 127.0.0.1. To accept the risk anyway (a \
         trusted, isolated network), add --insecure.",
        exposed.ip()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_is_allowed_without_auth() {
        assert!(check("127.0.0.1:0", AuthMode::None, false).await.is_ok());
        assert!(check("[::1]:0", AuthMode::None, false).await.is_ok());
    }

    #[tokio::test]
    async fn any_address_without_auth_is_refused_unless_insecure() {
        let refusal = check("0.0.0.0:0", AuthMode::None, false).await.unwrap_err();
        assert!(refusal.contains("--auth token"), "{refusal}");
        assert!(refusal.contains("--insecure"), "{refusal}");
        assert!(check("0.0.0.0:0", AuthMode::None, true).await.is_ok());
        assert!(check("0.0.0.0:0", AuthMode::Token, false).await.is_ok());
    }
}
