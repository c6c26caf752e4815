//! The MQTT task: one `rumqttc` connection per door. Events from the stream go to a durable
//! outbox first (flushed: a broker outage, a restart or `kill -9` loses nothing queued), then
//! out one at a time at QoS 1, each forgotten only on the broker's PUBACK — in order,
//! at-least-once. On every (re)connection: `online` on the availability topic (retained; the
//! last will says `offline`), the discovery documents and the current state (retained); again
//! whenever Home Assistant announces `online`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{Notify, broadcast};

use super::{DoorState, MqttConfig, Topics, discovery, event_type};
use crate::clock::Clock;
use crate::events::DoorEvent;
use crate::monitor::{Monitor, SinkMetrics};
use crate::sinks::SinkError;
use crate::sinks::document::EventDocument;
use crate::store::audit::{AuditEvent, AuditKind, AuditOutbox};
use crate::store::outbox::Outbox;

/// The door's MQTT sink, opened and ready to [`spawn`](Mqtt::spawn).
pub struct Mqtt {
    door: String,
    topics: Topics,
    contact_wired: bool,
    discovery: bool,
    options: MqttOptions,
    outbox: Outbox,
    state: Mutex<DoorState>,
    wake: Notify,
    metrics: SinkMetrics,
    audit: AuditOutbox,
    clock: Arc<dyn Clock>,
    label: String,
}

impl Mqtt {
    pub fn open(
        door: &str,
        config: &MqttConfig,
        contact_wired: bool,
        db: &sled::Db,
        audit: AuditOutbox,
        monitor: &Monitor,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SinkError> {
        let host = config.host.clone().unwrap_or_default();
        let topics = Topics::new(config, door);
        let client_id = config
            .client_id
            .clone()
            .unwrap_or_else(|| format!("facegate-{door}"));
        let mut options = MqttOptions::new(client_id, host.clone(), config.port);
        options.set_keep_alive(Duration::from_secs(config.keep_alive_secs));
        options.set_clean_session(true);
        options.set_last_will(LastWill::new(
            &topics.availability,
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(user) = &config.username {
            let password = config.password().map_err(SinkError::Secret)?;
            options.set_credentials(user, password.unwrap_or_default());
        }
        let label = format!("mqtt://{host}:{}", config.port);
        let outbox = Outbox::open(db, "mqtt", config.outbox_capacity)?;
        let metrics = monitor.sink("mqtt", &label);
        metrics
            .queued
            .set(i64::try_from(outbox.len()).unwrap_or(i64::MAX));
        Ok(Self {
            door: door.into(),
            topics,
            contact_wired,
            discovery: config.discovery,
            options,
            outbox,
            state: Mutex::new(DoorState::default()),
            wake: Notify::new(),
            metrics,
            audit,
            clock,
            label,
        })
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Starts following `events` and publishing; subscribe before the door runs. Returns the
    /// connection's task (aborting it drops the connection: the broker sends the last will).
    pub fn spawn(self, events: broadcast::Receiver<DoorEvent>) -> tokio::task::JoinHandle<()> {
        let (client, mut eventloop) = AsyncClient::new(self.options.clone(), 64);
        // Small messages one at a time: without this, Nagle and the broker's delayed ACK hold
        // each event back ~40 ms.
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let this = Arc::new(self);
        let follower = tokio::spawn(this.clone().follow(events, client.clone()));
        tokio::spawn(async move {
            this.connection(client, eventloop).await;
            follower.abort();
        })
    }

    /// Events into the outbox; state changes straight out (retained: the newest wins).
    async fn follow(
        self: Arc<Self>,
        mut events: broadcast::Receiver<DoorEvent>,
        client: AsyncClient,
    ) {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.metrics.dropped.inc_by(missed);
                    self.audit_gap(missed, "fell behind the door's events");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let changed = self
                .state
                .lock()
                .map(|mut s| s.apply(&event))
                .unwrap_or(false);
            if changed {
                self.publish_state(&client);
            }
            if let (
                DoorEvent::Attempt {
                    user: Some(user),
                    outcome,
                    ..
                },
                true,
            ) = (&event, event_type(&event).is_some())
                && outcome.granted()
            {
                let _ = client.try_publish(&self.topics.tag, QoS::AtMostOnce, false, user.clone());
            }
            let Some(kind) = event_type(&event) else {
                continue;
            };
            let doc = EventDocument::new(uuid::Uuid::new_v4().to_string(), &event);
            let Ok(mut value) = serde_json::to_value(&doc) else {
                continue;
            };
            value["event_type"] = kind.into();
            let body = value.to_string().into_bytes();
            match self.outbox.append(|_| body) {
                Ok((_, dropped)) => {
                    if dropped > 0 {
                        self.metrics.dropped.inc_by(dropped);
                        self.audit_gap(dropped, "outbox full: the oldest dropped");
                    }
                    self.metrics.queued.set(self.depth());
                    self.wake.notify_one();
                }
                Err(e) => {
                    self.metrics.dropped.inc();
                    tracing::error!(%e, "mqtt outbox: event lost");
                }
            }
        }
    }

    fn publish_state(&self, client: &AsyncClient) {
        let Ok(state) = self.state.lock().map(|s| serde_json::to_vec(&*s)) else {
            return;
        };
        if let Ok(state) = state {
            // Dropped when the request queue is full: the next connection republishes it.
            let _ = client.try_publish(&self.topics.state, QoS::AtLeastOnce, true, state);
        }
    }

    /// Availability, discovery and state: on each connection, and when HA restarts.
    fn announce(&self, client: &AsyncClient) {
        let _ = client.try_publish(&self.topics.availability, QoS::AtLeastOnce, true, "online");
        if self.discovery {
            for (topic, doc) in discovery(&self.topics, &self.door, self.contact_wired) {
                let _ = client.try_publish(topic, QoS::AtLeastOnce, true, doc.to_string());
            }
        }
        self.publish_state(client);
    }

    /// The connection: reconnects with a pause after any error, until the runtime stops.
    async fn connection(&self, client: AsyncClient, mut eventloop: EventLoop) {
        let mut connected = false;
        // The event in flight: its outbox seq, and its packet id once sent.
        let mut in_flight: Option<(u64, Option<u16>)> = None;
        loop {
            if connected && in_flight.is_none() {
                match self.outbox.pending(1) {
                    Ok(mut next) => {
                        if let Some(record) = next.pop()
                            && client
                                .try_publish(
                                    &self.topics.event,
                                    QoS::AtLeastOnce,
                                    false,
                                    record.bytes,
                                )
                                .is_ok()
                        {
                            in_flight = Some((record.seq, None));
                        }
                    }
                    Err(e) => tracing::error!(%e, "mqtt outbox unreadable"),
                }
            }
            let polled = tokio::select! {
                polled = eventloop.poll() => Some(polled),
                _ = self.wake.notified(), if connected && in_flight.is_none() => None,
            };
            let Some(polled) = polled else { continue };
            match polled {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!(broker = %self.label, "mqtt connected");
                    connected = true;
                    in_flight = None;
                    let _ = client.try_subscribe(&self.topics.ha_status, QoS::AtLeastOnce);
                    self.announce(&client);
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    // Publishes go out in the order asked; the event's is the one with no id
                    // yet among those after it was queued. Only QoS 1 publishes have ids.
                    if let Some((_, id @ None)) = &mut in_flight
                        && pkid != 0
                    {
                        *id = Some(pkid);
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some((seq, Some(pkid))) = in_flight
                        && pkid == ack.pkid
                    {
                        if let Err(e) = self.outbox.acknowledge(seq) {
                            tracing::error!(%e, "mqtt outbox acknowledge failed");
                        }
                        self.metrics.sent.inc();
                        self.metrics.queued.set(self.depth());
                        in_flight = None;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if p.topic == self.topics.ha_status && p.payload.as_ref() == b"online" {
                        self.announce(&client);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if connected {
                        tracing::warn!(%e, broker = %self.label, "mqtt connection lost");
                    }
                    if in_flight.is_some() {
                        self.metrics.failed.inc();
                    }
                    connected = false;
                    in_flight = None;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    fn depth(&self) -> i64 {
        i64::try_from(self.outbox.len()).unwrap_or(i64::MAX)
    }

    fn audit_gap(&self, count: u64, why: &str) {
        let reason = format!("mqtt {}: {count} event(s) not sent: {why}", self.label);
        tracing::warn!(%reason);
        let event = AuditEvent {
            kind: AuditKind::SinkOverflow,
            time_ms: self.clock.now_ms(),
            door: self.door.clone(),
            user: None,
            granted: false,
            outcome: None,
            reason,
            similarity: None,
            backend: "mqtt".into(),
            online: true,
            latency_ms: 0,
            dropped_before: 0,
        };
        if let Err(e) = self.audit.append(event) {
            tracing::error!(%e, "audit of an mqtt gap");
        }
    }
}
