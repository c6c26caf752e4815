//! MQTT: the door's events on `<prefix>/<door>/event` (the shared [`EventDocument`], from a
//! durable outbox, in order, QoS 1), its state retained on `<prefix>/<door>/state`, an
//! availability topic set as the last will, and Home Assistant discovery documents — one HA
//! device per door. What is published where is decided here, purely; [`client`] does the I/O.
//! Commands (LOCK/UNLOCK/OPEN) are not built yet.
//!
//! [`EventDocument`]: crate::sinks::document::EventDocument

pub mod client;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::events::{Alarm, DoorEvent};

/// Config section `[mqtt]`; off while `host` is not set.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// The broker's host name or address; unset: no MQTT.
    pub host: Option<String>,
    pub port: u16,
    /// Default `facegate-<door>`.
    pub client_id: Option<String>,
    pub username: Option<String>,
    /// A file holding the password (trimmed); read when the service starts.
    pub password_file: Option<PathBuf>,
    /// The first level of facegate's topics.
    pub topic_prefix: String,
    /// Publish Home Assistant discovery documents.
    pub discovery: bool,
    pub discovery_prefix: String,
    pub keep_alive_secs: u64,
    /// Events kept while the broker is unreachable; beyond, the oldest are dropped, counted and
    /// audited.
    pub outbox_capacity: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: None,
            port: 1883,
            client_id: None,
            username: None,
            password_file: None,
            topic_prefix: "facegate".into(),
            discovery: true,
            discovery_prefix: "homeassistant".into(),
            keep_alive_secs: 30,
            outbox_capacity: 10_000,
        }
    }
}

/// A topic level from user text: MQTT's wildcards and separators are not allowed in one.
fn valid_level(level: &str) -> bool {
    !level.is_empty() && !level.contains(['+', '#', '\0'])
}

impl MqttConfig {
    pub fn enabled(&self) -> bool {
        self.host.is_some()
    }

    /// The broker password from `password_file` (trimmed), when there is one.
    pub fn password(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.password_file else {
            return Ok(None);
        };
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string()))
    }

    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.host.as_deref().is_some_and(str::is_empty) {
            problems.push("mqtt.host is empty: remove it to turn MQTT off".into());
        }
        if self.port == 0 {
            problems.push("mqtt.port must be 1 to 65535".into());
        }
        for (key, prefix) in [
            ("mqtt.topic_prefix", &self.topic_prefix),
            ("mqtt.discovery_prefix", &self.discovery_prefix),
        ] {
            if !prefix.split('/').all(valid_level) {
                problems.push(format!(
                    "{key} = {prefix:?} must be topic levels without +, # or empty levels"
                ));
            }
        }
        if !(5..=3_600).contains(&self.keep_alive_secs) {
            problems.push(format!(
                "mqtt.keep_alive_secs = {} must be 5 to 3600",
                self.keep_alive_secs
            ));
        }
        if !(1..=1_000_000).contains(&self.outbox_capacity) {
            problems.push(format!(
                "mqtt.outbox_capacity = {} must be 1 to 1000000",
                self.outbox_capacity
            ));
        }
        if self.password_file.is_some() && self.username.is_none() {
            problems.push("mqtt.password_file is set without mqtt.username".into());
        }
        problems
    }
}

/// The topics of one door.
#[derive(Debug, Clone, PartialEq)]
pub struct Topics {
    pub event: String,
    pub state: String,
    pub availability: String,
    /// Granted users' ids, for Home Assistant's tag scanner.
    pub tag: String,
    /// Where Home Assistant says it (re)started.
    pub ha_status: String,
    discovery_prefix: String,
    /// The door's id in topics and unique ids.
    node: String,
}

impl Topics {
    pub fn new(config: &MqttConfig, door: &str) -> Self {
        let node: String = door
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let base = format!("{}/{node}", config.topic_prefix);
        Self {
            event: format!("{base}/event"),
            state: format!("{base}/state"),
            availability: format!("{base}/availability"),
            tag: format!("{base}/tag"),
            ha_status: format!("{}/status", config.discovery_prefix),
            discovery_prefix: config.discovery_prefix.clone(),
            node,
        }
    }
}

/// Every event type the HA event entity can fire.
pub const EVENT_TYPES: [&str; 11] = [
    "granted",
    "denied",
    "unlocked",
    "locked",
    "opened",
    "closed",
    "forced",
    "held_open",
    "alarm_cleared",
    "camera",
    "backend",
];

/// The HA event type of `event`; `None` for prompts, which are not published.
pub fn event_type(event: &DoorEvent) -> Option<&'static str> {
    Some(match event {
        DoorEvent::Attempt { outcome, .. } => crate::sinks::document::decision(outcome),
        DoorEvent::Unlocked { .. } => "unlocked",
        DoorEvent::Locked { .. } => "locked",
        DoorEvent::Contact { open: true, .. } => "opened",
        DoorEvent::Contact { open: false, .. } => "closed",
        DoorEvent::Alarm { alarm, .. } => match alarm {
            Alarm::Forced => "forced",
            Alarm::HeldOpen => "held_open",
            Alarm::Closed => "alarm_cleared",
        },
        DoorEvent::Camera { .. } => "camera",
        DoorEvent::Backend { .. } => "backend",
        DoorEvent::Prompt { .. } => return None,
    })
}

/// The door as the retained state topic tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoorState {
    /// `locked` or `unlocked`.
    pub lock: &'static str,
    /// `open`, `closed`, or absent without a contact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub door: Option<&'static str>,
    /// The last granted user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_user: Option<String>,
    /// The backend answered the last time it was asked.
    pub online: bool,
}

impl Default for DoorState {
    fn default() -> Self {
        Self {
            lock: "locked",
            door: None,
            last_user: None,
            online: true,
        }
    }
}

impl DoorState {
    /// Applies `event`; whether the state changed.
    pub fn apply(&mut self, event: &DoorEvent) -> bool {
        let before = self.clone();
        match event {
            DoorEvent::Attempt {
                user: Some(user),
                outcome,
                ..
            } if outcome.granted() => self.last_user = Some(user.clone()),
            DoorEvent::Attempt { online, .. } | DoorEvent::Backend { online, .. } => {
                self.online = *online
            }
            DoorEvent::Unlocked { .. } => self.lock = "unlocked",
            DoorEvent::Locked { .. } => self.lock = "locked",
            DoorEvent::Contact { open, .. } => {
                self.door = Some(if *open { "open" } else { "closed" })
            }
            _ => {}
        }
        *self != before
    }
}

/// Home Assistant discovery: `(topic, document)` for each entity of the door's device — the
/// lock's state, the event entity, the last user, the tag scanner, and the door contact when
/// one is wired. Every entity shares the device and the availability topic.
pub fn discovery(topics: &Topics, door: &str, contact_wired: bool) -> Vec<(String, Value)> {
    let node = &topics.node;
    let device = json!({
        "identifiers": [format!("facegate_{node}")],
        "name": format!("facegate {door}"),
        "manufacturer": "facegate",
        "model": "face recognition door",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let common = |object: &str, name: &str| {
        json!({
            "name": name,
            "unique_id": format!("facegate_{node}_{object}"),
            "availability_topic": topics.availability,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        })
    };
    let merge = |mut base: Value, extra: Value| {
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        base
    };
    let at = |component: &str, object: &str| {
        format!(
            "{}/{component}/{node}/{object}/config",
            topics.discovery_prefix
        )
    };
    let mut docs = vec![
        (
            at("binary_sensor", "lock"),
            merge(
                common("lock", "Lock"),
                json!({
                    "device_class": "lock",
                    "state_topic": topics.state,
                    "value_template": "{{ value_json.lock }}",
                    // device_class lock: on means unlocked.
                    "payload_on": "unlocked",
                    "payload_off": "locked",
                }),
            ),
        ),
        (
            at("event", "access"),
            merge(
                common("access", "Access"),
                json!({
                    "state_topic": topics.event,
                    "event_types": EVENT_TYPES,
                    "value_template": "{{ {'event_type': value_json.event_type} | to_json }}",
                }),
            ),
        ),
        (
            at("sensor", "last_user"),
            merge(
                common("last_user", "Last user"),
                json!({
                    "state_topic": topics.state,
                    "value_template": "{{ value_json.last_user | default('') }}",
                    "icon": "mdi:account-key",
                }),
            ),
        ),
        (
            at("tag", "face"),
            json!({ "topic": topics.tag, "value_template": "{{ value }}", "device": device }),
        ),
    ];
    if contact_wired {
        docs.push((
            at("binary_sensor", "contact"),
            merge(
                common("contact", "Door"),
                json!({
                    "device_class": "door",
                    "state_topic": topics.state,
                    "value_template": "{{ value_json.door }}",
                    "payload_on": "open",
                    "payload_off": "closed",
                }),
            ),
        ));
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Outcome, Via};

    #[test]
    fn topics_follow_the_prefix_and_a_safe_door_name() {
        let t = Topics::new(&MqttConfig::default(), "front door");
        assert_eq!(t.event, "facegate/front_door/event");
        assert_eq!(t.availability, "facegate/front_door/availability");
        assert_eq!(t.ha_status, "homeassistant/status");
        let mut bad = MqttConfig {
            topic_prefix: "a/#".into(),
            keep_alive_secs: 1,
            ..MqttConfig::default()
        };
        assert_eq!(bad.problems().len(), 2);
        bad.topic_prefix = "site/a".into();
        bad.keep_alive_secs = 30;
        assert!(bad.problems().is_empty() && !bad.enabled());
    }

    #[test]
    fn state_follows_grants_locks_and_the_contact() {
        let mut state = DoorState::default();
        let grant = DoorEvent::Attempt {
            at_ms: 0,
            door: "front".into(),
            user: Some("ana".into()),
            outcome: Outcome::Granted(Via::Verified),
            online: true,
            similarity: None,
            reason: String::new(),
            face_to_relay_ms: 0,
        };
        assert!(state.apply(&grant));
        assert!(!state.apply(&grant));
        assert_eq!(state.last_user.as_deref(), Some("ana"));
        let contact = DoorEvent::Contact {
            at_ms: 0,
            door: "front".into(),
            open: true,
        };
        assert!(state.apply(&contact));
        assert_eq!(
            serde_json::to_value(&state).unwrap(),
            json!({"lock": "locked", "door": "open", "last_user": "ana", "online": true})
        );
        assert_eq!(event_type(&grant), Some("granted"));
    }

    #[test]
    fn the_contact_entity_exists_only_when_wired() {
        let t = Topics::new(&MqttConfig::default(), "front");
        assert_eq!(discovery(&t, "front", false).len(), 4);
        let docs = discovery(&t, "front", true);
        assert_eq!(docs.len(), 5);
        assert_eq!(
            docs[4].0,
            "homeassistant/binary_sensor/front/contact/config"
        );
        assert_eq!(docs[4].1["device_class"], "door");
    }
}
