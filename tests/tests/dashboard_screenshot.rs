//! The dashboard renders in a plain `chromium --headless --screenshot`: Chromium exits within
//! seconds with a picture of the page. With a page that held an event stream open, virtual
//! time (`--virtual-time-budget`) never ran out and Chromium never exited.
//!
//! Needs the Debian package `chromium` (`.ci/run` installs it); where it is missing the test
//! fails and says so, since a skipped browser test would look like a passing one.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_tests::server_harness::ServerProcess;

/// Chromium at the Debian path.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Longest a screenshot may take; a page Chromium cannot finish runs into it.
const SCREENSHOT_TIMEOUT: Duration = Duration::from_secs(60);
/// Virtual milliseconds the page gets before the picture is taken (several polls).
const VIRTUAL_TIME_BUDGET_MS: u32 = 5000;
/// A rendered dashboard has far more colours than this (text, cards, charts); a blank or
/// single-colour page has one or two.
const RENDERED_COLOURS_MIN: usize = 50;

/// Runs `chromium --headless --screenshot` on `url`; panics when it does not exit in time.
fn screenshot(url: &str, png: &Path, profile: &Path) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: install it with `apt-get install -y chromium` (Debian)"
    );
    let mut chromium = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = chromium.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > SCREENSHOT_TIMEOUT {
            let _ = chromium.kill();
            let _ = chromium.wait();
            panic!("chromium did not finish the screenshot within {SCREENSHOT_TIMEOUT:?}");
        }
        // Polling a child process's exit; nothing here can be waited on with a timeout.
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "chromium exited with {status}");
}

/// The distinct RGBA colours of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium
/// writes), counted up to `limit`.
fn png_colours(bytes: &[u8], limit: usize) -> usize {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut width, mut channels, mut compressed) = (0usize, 0usize, Vec::new());
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let length = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + length];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                assert_eq!(data[8], 8, "8-bit samples");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other} not handled"),
                };
                assert_eq!(data[12], 0, "not interlaced");
            }
            b"IDAT" => compressed.extend_from_slice(data),
            _ => {}
        }
        at += 12 + length;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..])
        .read_to_end(&mut raw)
        .expect("the image data inflates");
    let stride = width * channels;
    let mut previous = vec![0u8; stride];
    let mut colours = std::collections::HashSet::new();
    for line in raw.chunks(stride + 1) {
        let (filter, encoded) = (line[0], &line[1..]);
        let mut row = vec![0u8; stride];
        for i in 0..stride {
            let left = if i >= channels { row[i - channels] } else { 0 };
            let up = previous[i];
            let up_left = if i >= channels {
                previous[i - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => paeth(left, up, up_left),
                other => panic!("unknown PNG filter {other}"),
            };
            row[i] = encoded[i].wrapping_add(predicted);
        }
        for pixel in row.chunks(channels) {
            colours.insert(pixel.to_vec());
            if colours.len() >= limit {
                return limit;
            }
        }
        previous = row;
    }
    colours.len()
}

fn paeth(left: u8, up: u8, up_left: u8) -> u8 {
    let estimate = i16::from(left) + i16::from(up) - i16::from(up_left);
    let distance = |value: u8| (estimate - i16::from(value)).abs();
    if distance(left) <= distance(up) && distance(left) <= distance(up_left) {
        left
    } else if distance(up) <= distance(up_left) {
        up
    } else {
        up_left
    }
}

/// `chromium --headless --screenshot --virtual-time-budget=5000` of the dashboard exits well
/// within a minute and writes a picture that is not blank.
#[tokio::test]
async fn headless_chromium_screenshot_of_the_dashboard_finishes() {
    let server = ServerProcess::start("memory:", &[]);
    let http = reqwest::Client::new();
    let registered = http
        .post(server.url("/api/v1/agents/register"))
        .json(&json!({ "name": "alice" }))
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success());
    let directory = tempfile::tempdir().unwrap();
    let png = directory.path().join("dashboard.png");
    let profile = directory.path().join("profile");
    let url = server.base();
    let (png_path, profile_path) = (png.clone(), profile.clone());
    tokio::task::spawn_blocking(move || screenshot(&url, &png_path, &profile_path))
        .await
        .unwrap();
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    let colours = png_colours(&bytes, RENDERED_COLOURS_MIN);
    assert!(
        colours >= RENDERED_COLOURS_MIN,
        "the screenshot has {colours} colours: a blank page"
    );
}

/// The PNG reader itself: a 2×1 RGB picture with two colours.
#[test]
fn png_colours_counts_the_distinct_pixels() {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    // One row, filter 0, two pixels: red and blue.
    encoder.write_all(&[0, 255, 0, 0, 0, 0, 255]).unwrap();
    let idat = encoder.finish().unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&[0; 4]); // the CRC is not checked
    };
    chunk(b"IHDR", &[0, 0, 0, 2, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
    chunk(b"IDAT", &idat);
    chunk(b"IEND", &[]);
    assert_eq!(png_colours(&png, 10), 2);
}
