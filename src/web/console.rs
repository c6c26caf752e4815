//! Signing in and out, the [`Signed`] extractor every console page takes (CSRF and role
//! checks), the Door page (remote unlock and relock as [`DoorCommand`]s, audited with the
//! account's name) and the Health page.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Form;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::guard::Held;
use super::layout::{notice, page};
use super::session::{self, COOKIE, LOGIN_COOKIE, Session, cookie, same_token};
use super::{Role, Web};
use crate::door::LockState;
use crate::events::DoorCommand;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A request from a signed-in account; anything else is sent to the sign-in page.
pub struct Signed(pub Session);

impl FromRequestParts<Arc<Web>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Arc<Web>) -> Result<Self, Response> {
        parts
            .headers
            .get(header::COOKIE)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| cookie(h, COOKIE))
            .and_then(|token| web.sessions.touch(token, now_ms()))
            .map(Signed)
            .ok_or_else(|| Redirect::to("/login").into_response())
    }
}

impl Signed {
    /// Why this form may not change anything (its token is not this session's, or the
    /// account is a viewer), as the page to answer with; `None`: go ahead.
    pub(crate) fn refusal(&self, csrf: &str) -> Option<Response> {
        if !same_token(csrf, &self.0.csrf) {
            return Some(refused(
                "This form's CSRF token is missing or wrong: nothing was changed. Reload the \
                 page and try again.",
            ));
        }
        if self.0.role != Role::Admin {
            return Some(refused(
                "Viewers can look, not change: nothing was changed.",
            ));
        }
        None
    }
}

pub(crate) fn refused(why: &str) -> Response {
    let mut response = page("Refused", None, notice(false, why));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub struct Token {
    #[serde(default)]
    csrf: String,
}

pub async fn home() -> Redirect {
    Redirect::to("/people")
}

// ---- sign-in ----------------------------------------------------------------------------

pub async fn login_page() -> Response {
    login_form(None)
}

fn login_form(message: Option<&str>) -> Response {
    let token = session::random_token();
    let body = html! {
        @if let Some(message) = message { (notice(false, message)) }
        form.login method="post" action="/login" {
            input type="hidden" name="csrf" value=(token);
            label { "Account " input name="account" autocomplete="username" required autofocus; }
            label { "Password " input name="password" type="password" autocomplete="current-password" required; }
            button type="submit" { "Sign in" }
        }
    };
    let mut response = page("Sign in", None, body);
    let cookie = format!("{LOGIN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/login");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie.parse().expect("cookie"));
    response
}

#[derive(Deserialize)]
pub struct Login {
    #[serde(default)]
    account: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub async fn login(
    State(web): State<Arc<Web>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    let expected = headers
        .get(header::COOKIE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| cookie(h, LOGIN_COOKIE))
        .unwrap_or_default();
    if !same_token(&form.csrf, expected) {
        return refused("The sign-in form's CSRF token is missing or wrong. Reload the page.");
    }
    let account = form.account.trim().to_string();
    match web.guard.admit(&account, from.ip(), now_ms()) {
        Ok(()) => {}
        Err(Held::Locked { until_ms }) => {
            let minutes = until_ms.saturating_sub(now_ms()).div_ceil(60_000);
            return login_form(Some(&format!(
                "This account is locked after too many wrong passwords: try again in {minutes} minute(s)."
            )));
        }
        Err(Held::TooFast) => {
            return login_form(Some("Too many sign-in attempts: wait a minute."));
        }
    }
    let checking = web.clone();
    let (name, password) = (account.clone(), form.password);
    let verdict =
        tokio::task::spawn_blocking(move || checking.accounts.verify(&name, &password)).await;
    match verdict {
        Ok(Ok(Some(role))) => {
            web.guard.succeeded(&account);
            tracing::info!(%account, "web console: signed in");
            let token = web.sessions.open(&account, role, now_ms());
            let mut response = Redirect::to("/people").into_response();
            let headers = response.headers_mut();
            let set = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
            headers.append(header::SET_COOKIE, set.parse().expect("cookie"));
            let clear = format!("{LOGIN_COOKIE}=; Max-Age=0; Path=/login");
            headers.append(header::SET_COOKIE, clear.parse().expect("cookie"));
            response
        }
        Ok(Ok(None)) => {
            let locked = web.guard.failed(&account, now_ms());
            tracing::warn!(%account, locked, "web console: a wrong password");
            login_form(Some(if locked {
                "Wrong account or password. This account is now locked after too many wrong passwords."
            } else {
                "Wrong account or password."
            }))
        }
        Ok(Err(e)) => login_form(Some(&format!("Cannot check the password: {e}"))),
        Err(e) => login_form(Some(&format!("Cannot check the password: {e}"))),
    }
}

pub async fn logout(
    State(web): State<Arc<Web>>,
    headers: axum::http::HeaderMap,
    signed: Signed,
    Form(form): Form<Token>,
) -> Response {
    if !same_token(&form.csrf, &signed.0.csrf) {
        return refused("This form's CSRF token is missing or wrong.");
    }
    if let Some(token) = headers
        .get(header::COOKIE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| cookie(h, COOKIE))
    {
        web.sessions.close(token);
    }
    let mut response = Redirect::to("/login").into_response();
    let clear = format!("{COOKIE}=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear.parse().expect("cookie"));
    response
}

// ---- door -------------------------------------------------------------------------------

pub async fn door(State(web): State<Arc<Web>>, signed: Signed) -> Response {
    door_page(&web, &signed.0, None)
}

fn door_page(web: &Web, session: &Session, done: Option<Markup>) -> Response {
    let health = web.parts.monitor.health();
    let contact = web.live.contact();
    let body = html! {
        @if let Some(done) = done { (done) }
        dl.state #door-state {
            dt { "Door" } dd { (web.parts.door) }
            dt { "Lock" } dd #lock { (format!("{:?}", health.relay).to_lowercase()) }
            dt { "Contact" } dd #contact { (match contact { Some(true) => "open", Some(false) => "closed", None => "not seen yet" }) }
            dt { "Camera" } dd { @if health.camera_ok { "up" } @else { "down" } }
            dt { "Backend" } dd { (health.backend) }
        }
        @if session.role == Role::Admin {
            div.buttons {
                form method="post" action="/door/unlock" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Unlock for " (web.parts.unlock_ms / 1000) " s" }
                }
                form method="post" action="/door/lock" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Lock now" }
                }
            }
            p.hint { "A remote unlock is bounded like a grant's and audited with your account's name." }
        }
    };
    page("Door", Some(session), body)
}

pub async fn unlock(
    State(web): State<Arc<Web>>,
    signed: Signed,
    Form(form): Form<Token>,
) -> Response {
    command(
        &web,
        signed,
        form,
        |by| DoorCommand::Unlock { by },
        LockState::Unlocked,
        "Unlocked",
    )
    .await
}

pub async fn lock(
    State(web): State<Arc<Web>>,
    signed: Signed,
    Form(form): Form<Token>,
) -> Response {
    let lock = |by| DoorCommand::Lock { by };
    command(&web, signed, form, lock, LockState::Locked, "Locked").await
}

async fn command(
    web: &Web,
    signed: Signed,
    form: Token,
    command: impl FnOnce(String) -> DoorCommand,
    expected: LockState,
    done: &str,
) -> Response {
    if let Some(refusal) = signed.refusal(&form.csrf) {
        return refusal;
    }
    let by = format!("web:{}", signed.0.account);
    let sent = web.parts.commands.try_send(command(by));
    let message = match sent {
        Ok(()) => notice(
            true,
            &format!("{done} (audited as web:{}).", signed.0.account),
        ),
        Err(_) => notice(false, "The door is busy: try again."),
    };
    // The door loop takes the command when it is between frames; show the state after it
    // (or, after 3 s, whatever the relay is: the page says it).
    for _ in 0..60 {
        if web.parts.monitor.health().relay == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    door_page(web, &signed.0, Some(message))
}

// ---- health -----------------------------------------------------------------------------

pub async fn health(State(web): State<Arc<Web>>, signed: Signed) -> Response {
    let health = web.parts.monitor.health();
    let metrics = web.parts.monitor.render_metrics();
    let key: Vec<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains("_bucket{"))
        .collect();
    let body = html! {
        dl.state {
            dt { "Overall" } dd { @if health.healthy() { "healthy" } @else { "NOT healthy" } }
            dt { "Ready" } dd { (health.ready) }
            dt { "Camera" } dd { @if health.camera_ok { "up" } @else { "down" } }
            dt { "Newest frame" } dd { (health.last_frame_age_ms.map_or("none yet".to_string(), |ms| format!("{ms} ms ago"))) }
            dt { "Backend" } dd { (health.backend) }
            dt { "Relay" } dd { (format!("{:?}", health.relay).to_lowercase()) }
        }
        p.hint { "The installation checks (models, permissions, clock, store) are "
                 code { "facegate doctor" } "'s: run it on the device." }
        h2 { "Metrics" }
        pre.metrics { (key.join("\n")) }
    };
    page("Health", Some(&signed.0), body)
}
