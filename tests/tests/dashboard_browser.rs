//! End-to-end test of the dashboard in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver) with `fantoccini`, loads the page served by the real `switchboard` binary and
//! sees live numbers appear, then change after messages are sent.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`.ci/run` installs them). Where
//! they are missing the test fails and says how to install them: a skipped browser test would
//! look like a passing one.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use switchboard_tests::server_harness::ServerProcess;

/// Longest wait for chromedriver to listen.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the page to show something.
const PAGE_WAIT: Duration = Duration::from_secs(20);

/// Chromium's flags. Beyond headless, these stop its background traffic (updates, sync,
/// QUIC probes), which the test machine's closed network refuses.
const CHROME_ARGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1100",
];

fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in candidates {
        if Path::new(name).is_absolute() && Path::new(name).exists() {
            return Some(PathBuf::from(name));
        }
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.exists() {
                return Some(candidate);
            }
        }
    }
    None
}

fn required(candidates: &[&str]) -> PathBuf {
    find_program(candidates).unwrap_or_else(|| {
        panic!(
            "{} not found: the dashboard browser test needs headless Chromium and its WebDriver. \
             Install them with `apt-get install -y chromium chromium-driver` (Debian), or run \
             .ci/run, which installs them when missing.",
            candidates[0]
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// chromedriver as a child process, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        let program = required(&["chromedriver", "/usr/lib/chromium/chromedriver"]);
        let port = free_port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver { child, port };
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                started.elapsed() < DRIVER_START_TIMEOUT,
                "chromedriver did not listen on {address} within {DRIVER_START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn open_browser(driver: &Driver, profile: &Path) -> Client {
    let chromium = required(&["chromium", "chromium-browser", "google-chrome"]);
    let mut args: Vec<String> = CHROME_ARGS.iter().map(|s| s.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": chromium, "args": args }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("chromedriver starts a Chromium session")
}

/// The text of the element with `id`, or an empty string while it is not there.
async fn text_of(browser: &Client, id: &str) -> String {
    match browser.find(Locator::Id(id)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until `done` holds for the text of `id`; panics with the last text after [`PAGE_WAIT`].
async fn wait_for_text(browser: &Client, id: &str, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let text = text_of(browser, id).await;
        if done(&text) {
            return text;
        }
        assert!(
            started.elapsed() < PAGE_WAIT,
            "#{id} never got there within {PAGE_WAIT:?}; it shows {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.replace(',', "").parse::<f64>().is_ok()
}

/// The page connects to the live feed, shows numbers from the server, and shows new numbers
/// after messages are sent, without a reload.
#[tokio::test]
async fn dashboard_shows_live_numbers_that_change_after_traffic() {
    let server = ServerProcess::start("memory:", &[]);
    let http = reqwest::Client::new();
    let register = http
        .post(server.url("/api/v1/agents/register"))
        .json(&json!({ "name": "alice" }))
        .send()
        .await
        .unwrap();
    assert!(register.status().is_success());

    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let browser = open_browser(&driver, profile.path()).await;
    // Run the checks in a task, so that a failed check still closes the browser below.
    let page = browser.clone();
    let base = server.base();
    let sends = server.url("/api/v1/messages?sender=tester");
    let checks = tokio::spawn(async move {
        let browser = page;
        browser.goto(&base).await.expect("the dashboard loads");
        wait_for_text(&browser, "connection-state", |t| t == "live").await;
        let score = wait_for_text(&browser, "health-score", is_number).await;
        assert!(score.parse::<f64>().unwrap() >= 0.0);
        assert_eq!(wait_for_text(&browser, "sent-total", is_number).await, "0");
        wait_for_text(&browser, "agents-table", |t| t.contains("alice")).await;

        for n in 0..5 {
            let sent = http
                .post(&sends)
                .json(&json!({ "recipient": "alice", "content": format!("job {n}") }))
                .send()
                .await
                .unwrap();
            assert!(sent.status().is_success());
        }
        wait_for_text(&browser, "sent-total", |t| t == "5").await;
        wait_for_text(&browser, "sent-rate", |t| is_number(t) && t != "0").await;
        // The queue card shows the five waiting messages.
        wait_for_text(&browser, "queue-depths", |t| t.contains('5')).await;
    })
    .await;
    let _ = browser.close().await;
    if let Err(failure) = checks {
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// With `--auth token`, the page opened as `/#token=TOKEN` passes the token to its data
/// requests and live feed, and shows live numbers.
#[tokio::test]
async fn dashboard_in_token_mode_uses_the_token_from_the_fragment() {
    const ADMIN: &str = "dashboard-admin-token-0123456789";
    let server = ServerProcess::start("memory:", &["--auth", "token", "--admin-token", ADMIN]);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let browser = open_browser(&driver, profile.path()).await;
    let page = browser.clone();
    let url = format!("{}/#token={ADMIN}", server.base());
    let checks = tokio::spawn(async move {
        let browser = page;
        browser.goto(&url).await.expect("the dashboard loads");
        wait_for_text(&browser, "connection-state", |t| t == "live").await;
        wait_for_text(&browser, "health-score", is_number).await;
        let shown = browser.current_url().await.unwrap();
        assert!(
            !shown.as_str().contains(ADMIN),
            "the token leaves the address bar: {shown}"
        );
    })
    .await;
    let _ = browser.close().await;
    if let Err(failure) = checks {
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// When the server stops answering, the page says so in a banner with the time it lost it and
/// dims the numbers it still shows, instead of leaving them looking current.
#[tokio::test]
async fn dashboard_shows_stale_numbers_and_a_banner_when_the_server_is_gone() {
    let mut server = ServerProcess::start("memory:", &[]);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let browser = open_browser(&driver, profile.path()).await;
    let page = browser.clone();
    let base = server.base();
    browser.goto(&base).await.expect("the dashboard loads");
    let loaded = tokio::spawn(async move {
        wait_for_text(&page, "connection-state", |t| t == "live").await;
        wait_for_text(&page, "health-score", is_number).await;
        assert_eq!(
            text_of(&page, "unreachable").await,
            "",
            "no banner while live"
        );
    })
    .await;
    if let Err(failure) = loaded {
        let _ = browser.close().await;
        std::panic::resume_unwind(failure.into_panic());
    }
    let stopped = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(stopped.success(), "{stopped}");
    let page = browser.clone();
    let checks = tokio::spawn(async move {
        let banner = wait_for_text(&page, "unreachable", |t| {
            t.starts_with("server unreachable since ")
        })
        .await;
        let clock: Vec<char> = banner["server unreachable since ".len()..]
            .chars()
            .take(8)
            .collect();
        let is_clock = clock.len() == 8
            && clock.iter().enumerate().all(|(i, c)| match i {
                2 | 5 => *c == ':',
                _ => c.is_ascii_digit(),
            });
        assert!(is_clock, "HH:MM:SS in {banner:?}");
        assert!(
            page.find(Locator::Css("body.stale")).await.is_ok(),
            "the numbers are dimmed"
        );
        assert_eq!(text_of(&page, "connection-state").await, "disconnected");
        assert!(
            is_number(&text_of(&page, "health-score").await),
            "still shown"
        );
    })
    .await;
    let _ = browser.close().await;
    if let Err(failure) = checks {
        std::panic::resume_unwind(failure.into_panic());
    }
}
