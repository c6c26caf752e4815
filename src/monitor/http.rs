//! The monitoring listener: `GET /healthz` (JSON; 200 when ready and seeing frames, else 503)
//! and `GET /metrics` (Prometheus text). Read-only: nothing served here can move the door. A
//! few connections at a time, each with a deadline for its request, so a stuck or hostile
//! client cannot pile up tasks on the door's runtime.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::Monitor;

/// Binds `addr`; the error names the address so the config can be fixed.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} (monitoring.listen): {e}"),
        )
    })
}

/// Serves `monitor` on `listener` until the task is dropped; a broken connection only ends
/// that connection.
pub async fn serve(listener: TcpListener, monitor: Arc<Monitor>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(%e, "monitoring: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("monitoring: too many connections, one refused");
            continue; // dropping the stream closes it
        };
        let monitor = monitor.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&monitor, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(REQUEST_DEADLINE)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_DEADLINE, connection).await {
                Ok(Err(e)) => tracing::debug!(%e, "monitoring: connection ended with an error"),
                Err(_) => tracing::debug!("monitoring: connection closed at its deadline"),
                Ok(Ok(())) => {}
            }
            drop(slot);
        });
    }
}

/// Scrapers and health checkers are few; more connections than this at once are refused.
const MAX_CONNECTIONS: usize = 8;
/// A request's headers must arrive within this.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// A kept-alive connection is closed after this, whatever it does.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(60);

fn respond(monitor: &Monitor, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match request.uri().path() {
        "/healthz" => {
            let report = monitor.health();
            let status = if report.healthy() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let body = serde_json::to_string(&report).unwrap_or_default() + "\n";
            with_type(status, body, "application/json")
        }
        "/metrics" => with_type(
            StatusCode::OK,
            monitor.render_metrics(),
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        ),
        _ => text(StatusCode::NOT_FOUND, "try /healthz or /metrics\n".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    with_type(status, body, "text/plain; charset=utf-8")
}

fn with_type(
    status: StatusCode,
    body: String,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
