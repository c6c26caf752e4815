//! Activity: the audit trail (`audit.jsonl`, the record of truth) with filters, its CSV and
//! JSON-lines exports, and the live view (server-sent events, `live.rs`) above it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::Web;
use super::console::Signed;
use super::layout::{notice, page, parse_time, time};
use crate::store::audit::Sequenced;

/// Rows the page shows (the exports carry every match).
pub const PAGE_ROWS: usize = 500;

/// The filters, from the query string.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Filter {
    #[serde(default)]
    user: String,
    /// `granted`, `denied`, an outcome label or an event kind.
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    door: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

impl Filter {
    fn keeps(&self, event: &Sequenced) -> bool {
        let e = &event.event;
        let kind = serde_json::to_value(e.kind).ok();
        let kind = kind.as_ref().and_then(|k| k.as_str()).unwrap_or("");
        let user = e.user.as_deref().unwrap_or("");
        (self.user.is_empty() || user.to_lowercase().contains(&self.user.to_lowercase()))
            && (self.door.is_empty() || e.door == self.door)
            && match self.outcome.as_str() {
                "" => true,
                "granted" => e.granted,
                "denied" => kind == "attempt" && !e.granted,
                other => e.outcome.as_deref() == Some(other) || kind == other,
            }
            && parse_time(&self.from).is_none_or(|from| e.time_ms >= from)
            && parse_time(&self.to).is_none_or(|to| e.time_ms < to)
    }

    fn query(&self) -> String {
        let pairs = [
            ("user", &self.user),
            ("outcome", &self.outcome),
            ("door", &self.door),
            ("from", &self.from),
            ("to", &self.to),
        ];
        pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", percent(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The trail's events that pass `filter`, oldest first, each once (the outbox may ship an
/// event twice; its sequence number tells).
fn matching(web: &Web, filter: &Filter) -> Result<Vec<Sequenced>, String> {
    let path = web.parts.data_dir.join("audit.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut events = BTreeMap::new();
    for line in text.lines() {
        if let Ok(event) = serde_json::from_str::<Sequenced>(line) {
            events.insert(event.seq, event);
        }
    }
    Ok(events.into_values().filter(|e| filter.keeps(e)).collect())
}

async fn render(web: &Web, signed: &Signed, filter: Filter) -> Response {
    let events = match matching(web, &filter) {
        Ok(events) => events,
        Err(why) => return page("Activity", Some(&signed.0), notice(false, &why)),
    };
    let query = filter.query();
    let body = html! {
        h2 { "Live" }
        table #live {
            thead { tr { th { "Time (UTC)" } th { "Event" } th { "User" } th { "What" } } }
            tbody {}
        }
        h2 { "Audit trail" }
        form.filters method="get" action="/activity" {
            label { "Person " input name="user" value=(filter.user); }
            label { "Outcome "
                select name="outcome" {
                    @for (value, words) in [("", "any"), ("granted", "granted"), ("denied", "denied"),
                        ("remote_unlock", "remote unlock"), ("remote_lock", "remote lock"), ("exit", "exit button"),
                        ("forced", "forced"), ("held_open", "held open")] {
                        option value=(value) selected[filter.outcome == value] { (words) }
                    }
                }
            }
            label { "Door " input name="door" value=(filter.door) size="8"; }
            label { "From " input name="from" type="datetime-local" value=(filter.from); }
            label { "To " input name="to" type="datetime-local" value=(filter.to); }
            button type="submit" { "Filter" }
        }
        p {
            (events.len()) " event(s)"
            @if events.len() > PAGE_ROWS { ", the newest " (PAGE_ROWS) " shown" }
            " · export: "
            a #export-csv href=(format!("/activity.csv?{query}")) { "CSV" } " · "
            a #export-jsonl href=(format!("/activity.jsonl?{query}")) { "JSON lines" }
        }
        table #audit {
            thead { tr { th { "Time (UTC)" } th { "Event" } th { "Door" } th { "User" } th { "Outcome" } th { "Reason" } } }
            tbody {
                @for event in events.iter().rev().take(PAGE_ROWS) {
                    @let e = &event.event;
                    tr class=(if e.granted { "granted" } else { "" }) {
                        td { (time(e.time_ms)) }
                        td { (kind_word(event)) }
                        td { (e.door) }
                        td { (e.user.as_deref().unwrap_or("")) }
                        td { (e.outcome.as_deref().unwrap_or(if e.granted { "granted" } else { "" })) }
                        td { (e.reason) }
                    }
                }
            }
        }
    };
    page("Activity", Some(&signed.0), body)
}

fn kind_word(event: &Sequenced) -> String {
    serde_json::to_value(event.event.kind)
        .ok()
        .and_then(|k| k.as_str().map(|k| k.replace('_', " ")))
        .unwrap_or_default()
}

/// `GET /activity`.
pub async fn show(
    State(web): State<Arc<Web>>,
    signed: Signed,
    Query(filter): Query<Filter>,
) -> Response {
    render(&web, &signed, filter).await
}

pub async fn csv(
    State(web): State<Arc<Web>>,
    _signed: Signed,
    Query(filter): Query<Filter>,
) -> Response {
    let events = match matching(&web, &filter) {
        Ok(events) => events,
        Err(why) => return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
    };
    let mut out = String::from(
        "seq,time_utc,kind,door,user,granted,outcome,reason,similarity,online,latency_ms\n",
    );
    for event in &events {
        let e = &event.event;
        let row = [
            event.seq.to_string(),
            time(e.time_ms),
            kind_word(event),
            e.door.clone(),
            e.user.clone().unwrap_or_default(),
            e.granted.to_string(),
            e.outcome.clone().unwrap_or_default(),
            e.reason.clone(),
            e.similarity.map(|s| format!("{s:.4}")).unwrap_or_default(),
            e.online.to_string(),
            e.latency_ms.to_string(),
        ];
        let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    download(out, "text/csv; charset=utf-8", "facegate-activity.csv")
}

pub async fn jsonl(
    State(web): State<Arc<Web>>,
    _signed: Signed,
    Query(filter): Query<Filter>,
) -> Response {
    let events = match matching(&web, &filter) {
        Ok(events) => events,
        Err(why) => return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
    };
    let mut out = String::new();
    for event in &events {
        out.push_str(&serde_json::to_string(event).unwrap_or_default());
        out.push('\n');
    }
    download(out, "application/x-ndjson", "facegate-activity.jsonl")
}

fn download(body: String, kind: &'static str, name: &'static str) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// One CSV cell: quoted when it must be, and never read as a formula by a spreadsheet.
fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }

    #[test]
    fn filters_round_trip_into_export_links() {
        let filter = Filter {
            user: "ana@example.com".into(),
            from: "2025-12-02T01:30".into(),
            ..Filter::default()
        };
        assert_eq!(
            filter.query(),
            "user=ana%40example.com&from=2025-12-02T01%3A30"
        );
    }
}
