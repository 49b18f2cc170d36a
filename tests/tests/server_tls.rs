//! Black-box tests of `serve --tls-cert --tls-key` against the real binary, with a self-signed
//! certificate made by `rcgen`: HTTPS and WSS on one port, the CLI over https with
//! `--ca-cert`, graceful shutdown, and clear refusals of half or bad TLS settings.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use switchboard_tests::server_harness::{run_to_end, ServerProcess};
use tokio_tungstenite::tungstenite::Message;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
struct Certificate {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    pem: String,
}

fn certificate() -> Certificate {
    let dir = tempfile::tempdir().unwrap();
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let pem = made.cert.pem();
    std::fs::write(&cert, &pem).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    Certificate {
        _dir: dir,
        cert,
        key,
        pem,
    }
}

fn start(certificate: &Certificate) -> ServerProcess {
    ServerProcess::start("memory:", &tls_args(&certificate.cert, &certificate.key))
}

fn tls_args<'a>(cert: &'a Path, key: &'a Path) -> Vec<&'a str> {
    vec![
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]
}

fn trusting(certificate: &Certificate) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certificate.pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn health_answers_over_https_with_the_certificate_trusted() {
    let certificate = certificate();
    let server = start(&certificate);
    assert!(server.base().starts_with("https://"), "{}", server.base());
    let response = trusting(&certificate)
        .get(server.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A client that does not trust the certificate is refused by its own TLS.
    assert!(reqwest::get(server.url("/health")).await.is_err());
}

#[tokio::test]
async fn websockets_work_over_wss() {
    let certificate = certificate();
    let server = start(&certificate);
    let http = trusting(&certificate);
    let registered = http
        .post(server.url("/api/v1/agents/register"))
        .json(&serde_json::json!({ "name": "alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::OK);

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(certificate.pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let url = server.ws_url("/ws/alice");
    assert!(url.starts_with("wss://"), "{url}");
    let (mut socket, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();

    let sent = http
        .post(server.url("/api/v1/messages?sender=tester"))
        .json(&serde_json::json!({ "recipient": "alice", "content": "over wss" }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    let pushed = loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a push within 10 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            break serde_json::from_str::<serde_json::Value>(&text).unwrap();
        }
    };
    assert_eq!(pushed["content"], "over wss", "{pushed}");
}

#[tokio::test]
async fn the_cli_talks_https_with_ca_cert() {
    let certificate = certificate();
    let server = start(&certificate);
    let base = server.base();
    let ca = certificate.cert.to_str().unwrap();
    let (status, _, err) = run_to_end(
        &["agents", "--server", &base, "--ca-cert", ca],
        Duration::from_secs(30),
    );
    assert!(status.success(), "{err}");
    let (status, _, err) = run_to_end(&["agents", "--server", &base], Duration::from_secs(30));
    // Exit 1 (failed), not 4 (cannot reach): trying again would not help.
    assert_eq!(
        status.code(),
        Some(1),
        "an untrusted certificate fails: {err}"
    );
    assert!(err.contains("--ca-cert"), "says how to trust it: {err}");
}

#[test]
fn sigterm_still_stops_a_tls_server_gracefully() {
    let certificate = certificate();
    let mut server = start(&certificate);
    assert!(server.terminate().success());
}

#[test]
fn half_or_unreadable_tls_settings_are_refused_at_start() {
    let certificate = certificate();
    let cert = certificate.cert.to_str().unwrap();
    let refusal = ServerProcess::try_start("memory:", &["--tls-cert", cert]).unwrap_err();
    assert!(
        refusal.contains("both --tls-cert and --tls-key"),
        "{refusal}"
    );
    let missing = ServerProcess::try_start(
        "memory:",
        &["--tls-cert", cert, "--tls-key", "/nonexistent/key.pem"],
    )
    .unwrap_err();
    assert!(missing.contains("/nonexistent/key.pem"), "{missing}");
}
