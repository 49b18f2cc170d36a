//! Optional TLS for the API (`--tls-cert PEM --tls-key PEM`): HTTPS and WSS on the API port,
//! with rustls on the `ring` crypto provider. The certificate chain and key are read once at
//! start; a missing, unreadable or invalid file stops the start with a paragraph naming it.
//! [`listener`] does the handshakes beside the connection cap of [`crate::listener`].

pub mod listener;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// TLS flags of `switchboard serve`.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// PEM file with the server's certificate chain (leaf first); serve HTTPS and WSS.
    /// Needs --tls-key.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1). Needs --tls-cert.
    #[arg(long, env = "SWITCHBOARD_TLS_KEY", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The server configuration, `None` without TLS flags. Errors are one paragraph.
    pub fn server_config(&self) -> Result<Option<Arc<ServerConfig>>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => server_config(cert, key).map(Some),
            (Some(_), None) | (None, Some(_)) => Err(
                "switchboard: TLS needs both --tls-cert and --tls-key (or SWITCHBOARD_TLS_CERT \
                 and SWITCHBOARD_TLS_KEY): the certificate chain and its private key, as PEM \
                 files. Give both to serve HTTPS, or neither to serve plain HTTP."
                    .to_string(),
            ),
        }
    }
}

/// The rustls provider used for the API (ring: builds without cmake or a C++ toolchain).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the chain at `cert` and the key at `key` into a server configuration speaking
/// HTTP/1.1 (WebSocket upgrades need it).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let unreadable = |what: &str, path: &Path, error: String| {
        format!(
            "switchboard: cannot use {} as the TLS {what}: {error}. Check the path and its \
             permissions, and that it is a PEM file (text starting with `-----BEGIN`).",
            path.display()
        )
    };
    std::fs::metadata(cert).map_err(|error| unreadable("certificate", cert, error.to_string()))?;
    std::fs::metadata(key).map_err(|error| unreadable("key", key, error.to_string()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|error| unreadable("certificate", cert, error.to_string()))?;
    if chain.is_empty() {
        return Err(unreadable(
            "certificate",
            cert,
            "it holds no CERTIFICATE block".into(),
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key)
        .map_err(|error| unreadable("key", key, error.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("switchboard: cannot set up TLS: {error}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|error| {
            format!(
                "switchboard: the TLS certificate {} and key {} do not work together: {error}. \
                 Check that the key is the certificate's own.",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path) -> (PathBuf, PathBuf) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn a_certificate_and_its_key_make_a_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path());
        assert!(server_config(&cert, &key).is_ok());
    }

    #[test]
    fn one_flag_without_the_other_is_refused() {
        let args = TlsArgs {
            tls_cert: Some("cert.pem".into()),
            tls_key: None,
        };
        let refusal = args.server_config().unwrap_err();
        assert!(
            refusal.contains("both --tls-cert and --tls-key"),
            "{refusal}"
        );
    }

    #[test]
    fn missing_and_invalid_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = write_pair(dir.path());
        let missing = dir.path().join("nowhere.pem");
        let refusal = server_config(&cert, &missing).unwrap_err();
        assert!(refusal.contains("nowhere.pem"), "{refusal}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let refusal = server_config(&garbage, &cert).unwrap_err();
        assert!(refusal.contains("garbage.pem"), "{refusal}");
    }
}
