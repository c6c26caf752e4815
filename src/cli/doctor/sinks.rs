//! The doctor's lines for the sinks: one per webhook target — its secret readable and long
//! enough, its URL answering HTTP at all (a HEAD request: nothing is delivered, nothing signed);
//! one for MQTT — the broker accepts a connection with the configured credentials (nothing is
//! published).

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet};

use super::Check;
use crate::sinks::mqtt::MqttConfig;
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

/// The MQTT line, when a broker is configured.
pub async fn mqtt(config: &MqttConfig) -> Option<Check> {
    const NAME: &str = "mqtt";
    let host = config.host.as_ref()?;
    let broker = format!("{host}:{}", config.port);
    let id = format!("facegate-doctor-{}", std::process::id());
    let mut options = MqttOptions::new(id, host.clone(), config.port);
    if let Some(user) = &config.username {
        match config.password() {
            Ok(password) => {
                options.set_credentials(user, password.unwrap_or_default());
            }
            Err(e) => {
                return Some(Check::fail(
                    NAME,
                    e,
                    "make password_file readable by the facegate user",
                ));
            }
        }
    }
    let (client, mut eventloop) = AsyncClient::new(options, 4);
    let connected = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await;
    let _ = client.try_disconnect();
    let fix = "events queue in the outbox meanwhile; check mqtt.host, mqtt.port, the credentials \
               and that the broker runs (facegate_sink_queued shows the backlog)";
    Some(match connected {
        Ok(Ok(())) => Check::ok(NAME, format!("broker {broker} accepted the connection")),
        Ok(Err(e)) => Check::fail(NAME, format!("broker {broker}: {e}"), fix),
        Err(_) => Check::fail(NAME, format!("broker {broker}: no answer in 5 s"), fix),
    })
}
