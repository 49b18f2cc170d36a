//! The URL this server tells standbys and clients to use, when `--advertise-url` names none.

use std::net::SocketAddr;

/// `scheme://address`; an unspecified address (`0.0.0.0`, `::`) is useless to anyone else, so
/// the host name stands in for it.
pub fn default_url(scheme: &str, local: SocketAddr) -> String {
    let host = if local.ip().is_unspecified() {
        host_name().unwrap_or_else(|| "localhost".into())
    } else if local.is_ipv6() {
        format!("[{}]", local.ip())
    } else {
        local.ip().to_string()
    };
    format!("{scheme}://{host}:{}", local.port())
}

fn host_name() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_address_is_advertised_with_its_scheme() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(default_url("http", local), "http://127.0.0.1:8080");
        let local: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(default_url("https", local), "https://[::1]:9");
    }

    #[test]
    fn every_address_is_advertised_by_host_name() {
        let local: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let url = default_url("http", local);
        assert!(!url.contains("0.0.0.0"), "{url}");
        assert!(url.ends_with(":8080"), "{url}");
    }
}
