//! The doctor's lines for the sinks: one per webhook target — its secret readable and long
//! enough, its URL answering HTTP at all (a HEAD request: nothing is delivered, nothing signed).

use std::time::Duration;

use super::Check;
use crate::sinks::webhook::WebhooksConfig;

const NAME: &str = "webhook";

pub async fn webhooks(config: &WebhooksConfig) -> Vec<Check> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout().min(Duration::from_secs(5)))
        .build();
    let mut checks = Vec::new();
    for target in &config.targets {
        let label = target.label();
        if let Err(e) = target.secret() {
            checks.push(Check::fail(
                NAME,
                format!("{label}: {e}"),
                "write a secret of at least 16 bytes shared with the receiver, readable by \
                 the facegate user (0640), and point secret_file at it",
            ));
            continue;
        }
        let Ok(client) = &client else {
            checks.push(Check::fail(NAME, "no HTTP client", "report this"));
            continue;
        };
        checks.push(match client.head(target.url.as_str()).send().await {
            Ok(answer) if target.url.starts_with("http://") => Check::warn(
                NAME,
                format!("{label} answers HTTP {}", answer.status().as_u16()),
                "plain HTTP: use https unless the receiver is on this device",
            ),
            Ok(answer) => Check::ok(
                NAME,
                format!("{label} answers HTTP {}", answer.status().as_u16()),
            ),
            Err(e) => Check::fail(
                NAME,
                format!("{label}: {e}"),
                "events queue in the outbox meanwhile; check the URL, the receiver and the \
                 network (facegate_sink_queued shows the backlog)",
            ),
        });
    }
    checks
}
