//! Webhooks: each door event POSTed as JSON ([`EventDocument`]) to one or more URLs, signed
//! (`X-Facegate-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, Stripe's scheme).
//! Delivery is at-least-once, in order per URL, from a durable outbox per URL ([`deliver`]);
//! what is decided here — signatures, which answers are final, backoff — is pure.
//!
//! [`EventDocument`]: crate::sinks::document::EventDocument

pub mod deliver;

use std::path::PathBuf;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::document::{DEFAULT_KINDS, KINDS};

/// The signature's header.
pub const SIGNATURE_HEADER: &str = "X-Facegate-Signature";
/// The event id's header (also in the body): receivers deduplicate on it.
pub const EVENT_ID_HEADER: &str = "X-Facegate-Event-Id";

/// Config section `[webhooks]`; off while `targets` is empty.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    pub targets: Vec<WebhookTarget>,
    /// How long one POST may take before it counts as failed and is retried.
    pub timeout_ms: u64,
    /// The first retry's delay; it doubles after each failure up to `retry_max_ms`.
    pub retry_min_ms: u64,
    pub retry_max_ms: u64,
    /// Events kept per URL while its receiver is unreachable; beyond, the oldest are dropped,
    /// counted and audited.
    pub outbox_capacity: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            timeout_ms: 5_000,
            retry_min_ms: 500,
            retry_max_ms: 60_000,
            outbox_capacity: 10_000,
        }
    }
}

/// One receiver (`[[webhooks.targets]]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    /// `https://…` (or `http://` to a loopback receiver, or with `allow_plain_http`).
    pub url: String,
    /// A file holding the shared signing secret (at least 16 bytes; surrounding whitespace
    /// is trimmed). Read when the service starts.
    pub secret_file: PathBuf,
    /// The event kinds this URL receives (see docs/integrations.md); default all but
    /// `prompt`.
    #[serde(default = "default_kinds")]
    pub events: Vec<String>,
    /// Plain HTTP to a host off loopback: who entered, readable on the wire.
    #[serde(default)]
    pub allow_plain_http: bool,
}

fn default_kinds() -> Vec<String> {
    DEFAULT_KINDS.iter().map(|k| k.to_string()).collect()
}

impl WebhookTarget {
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|k| k == kind)
    }

    /// The URL without its query or credentials: safe in logs and metric labels.
    pub fn label(&self) -> String {
        match reqwest::Url::parse(&self.url) {
            Ok(url) => {
                format!(
                    "{}://{}{}",
                    url.scheme(),
                    url.host_str().unwrap_or(""),
                    url.port().map(|p| format!(":{p}")).unwrap_or_default()
                ) + url.path()
            }
            Err(_) => "invalid-url".into(),
        }
    }

    /// Reads the signing secret.
    pub fn secret(&self) -> Result<Vec<u8>, String> {
        let text = std::fs::read(&self.secret_file)
            .map_err(|e| format!("{}: {e}", self.secret_file.display()))?;
        let secret = text.trim_ascii().to_vec();
        if secret.len() < 16 {
            return Err(format!(
                "{}: the webhook secret must be at least 16 bytes",
                self.secret_file.display()
            ));
        }
        Ok(secret)
    }
}

impl WebhooksConfig {
    pub fn enabled(&self) -> bool {
        !self.targets.is_empty()
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Every value out of range, naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(100..=60_000).contains(&self.timeout_ms) {
            problems.push(format!(
                "webhooks.timeout_ms = {} must be 100 to 60000",
                self.timeout_ms
            ));
        }
        if self.retry_min_ms < 10 || self.retry_min_ms > self.retry_max_ms {
            problems.push(format!(
                "webhooks.retry_min_ms = {} must be at least 10 and at most retry_max_ms",
                self.retry_min_ms
            ));
        }
        if !(10..=3_600_000).contains(&self.retry_max_ms) {
            problems.push(format!(
                "webhooks.retry_max_ms = {} must be 10 to 3600000",
                self.retry_max_ms
            ));
        }
        if !(1..=1_000_000).contains(&self.outbox_capacity) {
            problems.push(format!(
                "webhooks.outbox_capacity = {} must be 1 to 1000000",
                self.outbox_capacity
            ));
        }
        for (i, target) in self.targets.iter().enumerate() {
            let key = format!("webhooks.targets[{i}]");
            match reqwest::Url::parse(&target.url) {
                Err(e) => problems.push(format!("{key}.url = {:?}: {e}", target.url)),
                Ok(url) => match url.scheme() {
                    "https" => {}
                    "http" if is_loopback(&url) || target.allow_plain_http => {}
                    "http" => problems.push(format!(
                        "{key}.url = {:?} is plain HTTP off loopback: who entered is readable \
                         on the wire; use https, or set allow_plain_http = true",
                        target.url
                    )),
                    other => problems.push(format!(
                        "{key}.url: the scheme {other:?} is not http or https"
                    )),
                },
            }
            if target.events.is_empty() {
                problems.push(format!("{key}.events is empty: nothing would be sent"));
            }
            for kind in target
                .events
                .iter()
                .filter(|k| !KINDS.contains(&k.as_str()))
            {
                problems.push(format!(
                    "{key}.events: {kind:?} is not one of {}",
                    KINDS.join(", ")
                ));
            }
        }
        problems
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The signature header's value for `body` sent at `unix_secs`.
pub fn signature(secret: &[u8], unix_secs: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={unix_secs},v1={hex}")
}

/// What to do with an event after one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The receiver has it (2xx).
    Delivered,
    /// Try again later: no answer, a timeout, 5xx, 408, 425, 429, or a redirect (not followed).
    Retry,
    /// The receiver refuses it for good (any other 4xx): dead-lettered, counted, audited.
    DeadLetter,
}

/// The verdict on an HTTP status.
pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 425 | 429 => Verdict::Retry,
        400..=499 => Verdict::DeadLetter,
        _ => Verdict::Retry,
    }
}

/// The delay before retry number `failures` (1 = the first): doubling from `min`, at most
/// `max`.
pub fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    (min * 2u32.pow(doublings)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> WebhookTarget {
        WebhookTarget {
            url: url.into(),
            secret_file: "/nonexistent".into(),
            events: default_kinds(),
            allow_plain_http: false,
        }
    }

    #[test]
    fn the_signature_is_stripes_scheme() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac …
        assert_eq!(
            signature(b"0123456789abcdef", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=9eb18f493f8ec135d9eb2dad817c369bb4e9cbfa818657897a7437c1cd8c3a23"
        );
    }

    #[test]
    fn only_permanent_refusals_are_dead_lettered() {
        assert_eq!(verdict(200), Verdict::Delivered);
        assert_eq!(verdict(204), Verdict::Delivered);
        for status in [404, 400, 401, 410, 422] {
            assert_eq!(verdict(status), Verdict::DeadLetter, "{status}");
        }
        for status in [408, 429, 500, 503, 301] {
            assert_eq!(verdict(status), Verdict::Retry, "{status}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(5));
        let delays: Vec<u64> = (1..=6)
            .map(|n| backoff(n, min, max).as_millis() as u64)
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(backoff(u32::MAX, min, max), max);
    }

    #[test]
    fn targets_are_checked_with_their_keys() {
        let mut config = WebhooksConfig::default();
        assert!(config.problems().is_empty() && !config.enabled());
        config.targets = vec![
            target("https://example.com/hook?token=x"),
            target("http://127.0.0.1:9/hook"),
            target("http://example.com/hook"),
            target("ftp://example.com/"),
        ];
        config.targets[1].events = vec!["attempt".into(), "everything".into()];
        let problems = config.problems().join("\n");
        assert!(problems.contains("webhooks.targets[2].url"), "{problems}");
        assert!(problems.contains("webhooks.targets[3].url"), "{problems}");
        assert!(
            problems.contains("\"everything\" is not one of"),
            "{problems}"
        );
        assert!(!problems.contains("targets[0]"), "{problems}");
        assert_eq!(config.targets[0].label(), "https://example.com/hook");
        assert!(config.targets[1].wants("attempt") && !config.targets[1].wants("locked"));
        config.targets[2].allow_plain_http = true;
        assert!(!config.problems().join("\n").contains("targets[2]"));
    }
}
