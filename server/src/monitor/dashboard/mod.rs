//! The dashboard: one self-contained page (HTML with its CSS and JavaScript inline, no CDN, no
//! build step) served at `/` and `/dashboard`, and a live feed, a server-sent event stream at
//! `/api/v1/monitor/events`.
//!
//! The page's parts live in `index.html`, `style.css`, `charts.js` and `app.js` beside this
//! file so each stays readable; they are compiled into the binary with `include_str!` and put
//! together once. The page polls `/api/v1/metrics/current` once a second rather than holding
//! the stream open: a request that never ends kept headless browsers' virtual time from
//! running out (`chromium --headless --screenshot --virtual-time-budget=...` never finished),
//! and a failed poll tells at once that the server is gone (`app.js` then dims the numbers and
//! says since when). The stream stays for other clients: it sends the current snapshot at
//! once, then a `snapshot` event each time the sampler takes one (once a second) and an
//! `alert` event for each alert that starts or resolves. It ends when the server shuts down,
//! so it never holds up a graceful stop.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::sync::{broadcast, watch};

use super::alerts::AlertChange;
use super::collector::collect;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Dashboard event streams open at once; more get a 503 (each holds a connection for as long
/// as a browser tab stays open).
pub const DASHBOARD_STREAMS_MAX: usize = 64;

const PAGE: &str = include_str!("index.html");
const STYLE: &str = include_str!("style.css");
const CHARTS: &str = include_str!("charts.js");
const APP: &str = include_str!("app.js");

/// The page with its style and scripts inline.
fn page_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        PAGE.replace("/*STYLE*/", STYLE)
            .replace("/*SCRIPT*/", &format!("{CHARTS}\n{APP}"))
    })
}

/// `GET /` and `GET /dashboard`.
#[utoipa::path(get, path = "/dashboard", tag = "monitoring",
    responses((status = 200, description = "The live dashboard (also at `/`)", content_type = "text/html")))]
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page_text(),
    )
        .into_response()
}

/// Counts an open stream; the count goes down when the stream is dropped.
struct StreamSlot {
    state: AppState,
}

impl StreamSlot {
    fn take(state: &AppState) -> ApiResult<Self> {
        let open = state.monitor.streams.fetch_add(1, Ordering::SeqCst);
        let slot = StreamSlot {
            state: state.clone(),
        };
        if open >= DASHBOARD_STREAMS_MAX {
            return Err(ApiError::Unavailable(format!(
                "{DASHBOARD_STREAMS_MAX} dashboards are open, the limit; close one and reload"
            )));
        }
        Ok(slot)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.state.monitor.streams.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Feed {
    first: Option<Arc<str>>,
    snapshots: watch::Receiver<Arc<str>>,
    alerts: broadcast::Receiver<AlertChange>,
    shutdown: watch::Receiver<bool>,
    _slot: StreamSlot,
}

/// `GET /api/v1/monitor/events`: the dashboard's live feed (server-sent events).
#[utoipa::path(get, path = "/api/v1/monitor/events", tag = "monitoring",
    responses((status = 200, description = "Server-sent events: `snapshot` (as \
        /api/v1/metrics/current) once a second, `alert` on each start or resolution",
        content_type = "text/event-stream"),
        (status = 503, description = "Too many dashboards open")))]
pub async fn events(
    State(state): State<AppState>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let slot = StreamSlot::take(&state)?;
    let first = serde_json::to_string(&collect(&state))
        .map_err(|error| ApiError::Internal(format!("cannot serialize a snapshot: {error}")))?;
    let mut snapshots = state.monitor.latest.subscribe();
    snapshots.mark_unchanged();
    let feed = Feed {
        first: Some(first.into()),
        snapshots,
        alerts: state.monitor.alert_changes.subscribe(),
        shutdown: state.shutdown.clone(),
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = next_event(&mut feed).await?;
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The next event, or `None` when the stream should end.
async fn next_event(feed: &mut Feed) -> Option<Event> {
    if let Some(first) = feed.first.take() {
        return Some(Event::default().event("snapshot").data(&*first));
    }
    tokio::select! {
        changed = feed.snapshots.changed() => {
            changed.ok()?;
            let json = feed.snapshots.borrow_and_update().clone();
            Some(Event::default().event("snapshot").data(&*json))
        }
        change = feed.alerts.recv() => match change {
            Ok(change) => Some(
                Event::default()
                    .event("alert")
                    .json_data(&change)
                    .unwrap_or_else(|_| Event::default().comment("unserializable alert")),
            ),
            // The next snapshot carries every active alert anyway.
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Event::default().comment("missed alert events")),
            Err(broadcast::error::RecvError::Closed) => None,
        },
        () = stopping(&mut feed.shutdown) => None,
    }
}

/// Resolves when the server starts shutting down (never, if nobody can tell it to).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_self_contained() {
        let page = page_text();
        assert!(!page.contains("/*STYLE*/") && !page.contains("/*SCRIPT*/"));
        assert!(
            page.contains("/api/v1/metrics/current"),
            "the page polls the snapshot"
        );
        assert!(
            !page.contains("EventSource"),
            "an open stream keeps headless screenshots from finishing"
        );
        for external in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "@import",
        ] {
            assert!(!page.contains(external), "the page loads {external}");
        }
    }
}
