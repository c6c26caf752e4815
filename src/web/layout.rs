//! The page frame (navigation, who is signed in), the files served from the binary, and the
//! time format every page shows (UTC, `YYYY-MM-DD HH:MM:SS`).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::Session;

const STYLE: &str = include_str!("assets/style.css");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const KIOSK_JS: &str = include_str!("assets/kiosk.js");

/// `GET /static/{file}`: the stylesheet and the two scripts, nothing else.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "console.js" => (CONSOLE_JS, "text/javascript; charset=utf-8"),
        "kiosk.js" => (KIOSK_JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// A console page: navigation, the signed-in account, `body`.
pub fn page(title: &str, session: Option<&Session>, body: Markup) -> Response {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · facegate" }
                    link rel="stylesheet" href="/static/style.css";
                    script src="/static/console.js" defer {}
                }
                body {
                    @if let Some(session) = session {
                        nav {
                            a href="/people" { "People" }
                            a href="/door" { "Door" }
                            a href="/activity" { "Activity" }
                            a href="/health" { "Health" }
                            a href="/kiosk" { "Kiosk" }
                            span.who { (session.account) " (" (role_word(session)) ")" }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                    main { h1 { (title) } (body) }
                }
            }
        }
        .into_string(),
    )
    .into_response()
}

fn role_word(session: &Session) -> &'static str {
    match session.role {
        super::Role::Admin => "admin",
        super::Role::Viewer => "viewer",
    }
}

/// A message box: `ok` green, else red.
pub fn notice(ok: bool, text: &str) -> Markup {
    html! { p class=(if ok { "notice ok" } else { "notice bad" }) role="status" { (text) } }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn time(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (an HTML date or datetime-local field, read as UTC) as
/// milliseconds since the epoch.
pub fn parse_time(text: &str) -> Option<u64> {
    let (date, clock) = text.split_once('T').unwrap_or((text, "00:00"));
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    let (h, min) = clock.split_once(':')?;
    let (h, min) = (h.parse::<u64>().ok()?, min.get(..2)?.parse::<u64>().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 {
        return None;
    }
    let days = u64::try_from(days_from_civil(y, m, d)).ok()?;
    Some(((days * 86_400) + h * 3600 + min * 60) * 1000)
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_go_both_ways() {
        assert_eq!(time(0), "1970-01-01 00:00:00");
        assert_eq!(time(1_764_633_600_000), "2025-12-02 00:00:00");
        assert_eq!(parse_time("2025-12-02"), Some(1_764_633_600_000));
        assert_eq!(parse_time("2025-12-02T01:30"), Some(1_764_639_000_000));
        assert_eq!(parse_time("2024-02-29T23:59"), Some(1_709_251_140_000));
        for bad in ["", "2025-13-01", "2025-12-02T25:00", "x-y-z", "2025-12"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
