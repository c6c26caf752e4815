//! The web console and the kiosk screen (docs/web.md): axum handlers over the same [`Admin`]
//! handler as the CLI, the door's event stream and its command channel, served by `facegate
//! run` when `[web] enabled`. Loopback only until TLS is built; every page is rendered on the
//! server with maud (escaped by construction), scripts are files in the binary, never inline.

mod accounts;
mod activity;
mod console;
mod guard;
mod kiosk;
mod layout;
mod live;
mod people;
mod session;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use accounts::{AccountError, Accounts, Role};
pub use people::MAX_PHOTOS;

use crate::admin::Admin;
use crate::events::{DoorCommand, EventBus};
use crate::monitor::Monitor;

/// How the kiosk names the person it welcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KioskNames {
    /// "Welcome, Ana".
    #[default]
    First,
    /// "Welcome, Ana Lima".
    Full,
    /// "Welcome" and no name.
    None,
}

/// Config section `[web]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Serve the console and the kiosk from `facegate run`.
    pub enabled: bool,
    /// Where; a loopback address (there is no TLS yet, and passwords must not cross a network
    /// in the clear).
    pub listen: SocketAddr,
    /// A signed-in session ends after this long without a request.
    pub idle_timeout_secs: u64,
    /// How long an account stays locked after `LOCKOUT_FAILURES` wrong passwords in a row.
    pub lockout_secs: u64,
    /// What the kiosk shows of a welcomed person's name.
    pub kiosk_names: KioskNames,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            idle_timeout_secs: 900,
            lockout_secs: 900,
            kiosk_names: KioskNames::First,
        }
    }
}

impl WebConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.enabled && !self.listen.ip().is_loopback() {
            problems.push(format!(
                "web.listen = \"{}\" is not a loopback address: the console has no TLS yet, so \
                 passwords and session cookies would cross the network in the clear; use \
                 127.0.0.1 or ::1 (and a TLS-terminating proxy, docs/web.md)",
                self.listen
            ));
        }
        if !(60..=86_400).contains(&self.idle_timeout_secs) {
            problems.push(format!(
                "web.idle_timeout_secs = {} must be 60 to 86400",
                self.idle_timeout_secs
            ));
        }
        if !(60..=86_400).contains(&self.lockout_secs) {
            problems.push(format!(
                "web.lockout_secs = {} must be 60 to 86400",
                self.lockout_secs
            ));
        }
        problems
    }
}

/// What the console serves from.
pub struct WebParts {
    pub config: WebConfig,
    pub data_dir: PathBuf,
    /// The embedded backend's handler (`None` on AWS: the People page says so).
    pub admin: Option<Arc<Admin>>,
    pub events: EventBus,
    pub commands: mpsc::Sender<DoorCommand>,
    pub monitor: Arc<Monitor>,
    /// The door this service drives, and how long an unlock lasts.
    pub door: String,
    pub unlock_ms: u64,
    /// The largest upload accepted, bytes (the enrollment photos together).
    pub max_upload_bytes: usize,
}

/// The console's shared state.
pub(crate) struct Web {
    parts: WebParts,
    accounts: Accounts,
    sessions: session::Sessions,
    guard: guard::LoginGuard,
    live: live::DoorView,
}

/// Binds `addr`; the error names the key.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} (web.listen): {e}"),
        )
    })
}

/// Serves the console on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, parts: WebParts) {
    let web = Arc::new(Web {
        accounts: Accounts::new(&parts.data_dir),
        sessions: session::Sessions::new(parts.config.idle_timeout_secs * 1000),
        guard: guard::LoginGuard::new(parts.config.lockout_secs * 1000),
        live: live::DoorView::default(),
        parts,
    });
    tokio::spawn(live::follow(web.clone()));
    if let Err(e) = axum::serve(
        listener,
        router(web).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    {
        tracing::warn!(%e, "web console stopped");
    }
}

fn router(web: Arc<Web>) -> Router {
    let upload = web.parts.max_upload_bytes + 64 * 1024;
    Router::new()
        .route("/", get(console::home))
        .route("/login", get(console::login_page).post(console::login))
        .route("/logout", post(console::logout))
        .route("/people", get(people::people))
        .route(
            "/people/enroll",
            post(people::enroll).layer(axum::extract::DefaultBodyLimit::max(upload)),
        )
        .route("/people/enabled", post(people::set_enabled))
        .route("/people/delete", post(people::delete))
        .route("/people/group", post(people::group))
        .route("/door", get(console::door))
        .route("/door/unlock", post(console::unlock))
        .route("/door/lock", post(console::lock))
        .route("/activity", get(activity::show))
        .route("/activity.csv", get(activity::csv))
        .route("/activity.jsonl", get(activity::jsonl))
        .route("/activity/live", get(live::console_stream))
        .route("/health", get(console::health))
        .route("/kiosk", get(kiosk::page))
        .route("/kiosk/live", get(kiosk::stream))
        .route("/static/{file}", get(layout::asset))
        .layer(axum::middleware::from_fn(loopback_host))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(web)
}

/// Refuses a request whose `Host` is not a loopback name: a web page elsewhere that points
/// its own domain at 127.0.0.1 (DNS rebinding) must not reach the console or the kiosk.
async fn loopback_host(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if is_loopback_host(host) {
        next.run(request).await
    } else {
        use axum::response::IntoResponse;
        let why =
            "facegate's console answers only to a loopback host name (localhost, 127.0.0.1, [::1])";
        (axum::http::StatusCode::MISDIRECTED_REQUEST, why).into_response()
    }
}

/// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Every response: no framing, no inline script, nothing from elsewhere, nothing cached.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_stays_on_loopback() {
        let mut config = WebConfig {
            enabled: true,
            ..WebConfig::default()
        };
        assert!(config.problems().is_empty());
        config.listen = "0.0.0.0:8080".parse().unwrap();
        let problems = config.problems();
        assert!(problems[0].contains("web.listen"), "{problems:?}");
        config.enabled = false;
        assert!(config.problems().is_empty(), "off, nothing listens");
    }

    #[test]
    fn only_loopback_host_names_are_answered() {
        for host in [
            "localhost:8080",
            "127.0.0.1:8080",
            "127.0.0.1",
            "[::1]:8080",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "evil.example:8080",
            "192.168.1.5:8080",
            "localhost.evil.example",
            "[::2]:1",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
