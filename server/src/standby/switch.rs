//! One listener, two routers in turn: the standby's until this server owns its storage, then
//! the full API. Each request is handed to whichever router is current when it arrives, so a
//! request (or socket) already being answered keeps the router it started with.

use std::sync::Arc;

use axum::extract::Request;
use axum::Router;
use parking_lot::RwLock;
use tower::ServiceExt;

/// The router requests go to now. Cheap to clone; all clones share it.
#[derive(Clone)]
pub struct RouterSwitch {
    current: Arc<RwLock<Router>>,
}

impl RouterSwitch {
    /// Sends requests to `initial` until [`RouterSwitch::switch_to`].
    pub fn new(initial: Router) -> Self {
        Self {
            current: Arc::new(RwLock::new(initial)),
        }
    }

    /// Sends every later request to `router`.
    pub fn switch_to(&self, router: Router) {
        *self.current.write() = router;
    }

    /// The router to serve: it hands each request to the current one.
    pub fn router(&self) -> Router {
        let current = self.current.clone();
        Router::new().fallback(move |request: Request| {
            // A clone (an `Arc` inside), so no lock is held while the request is answered.
            let router = current.read().clone();
            async move {
                match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;

    use super::*;

    #[tokio::test]
    async fn requests_go_to_the_router_switched_to() {
        let switch = RouterSwitch::new(
            Router::new().route("/health", get(|| async { StatusCode::SERVICE_UNAVAILABLE })),
        );
        let served = switch.router();
        let health = || Request::get("/health").body(Body::empty()).unwrap();
        let before = served.clone().oneshot(health()).await.unwrap();
        assert_eq!(before.status(), StatusCode::SERVICE_UNAVAILABLE);
        switch.switch_to(Router::new().route("/health", get(|| async { StatusCode::OK })));
        let after = served.oneshot(health()).await.unwrap();
        assert_eq!(after.status(), StatusCode::OK);
    }
}
