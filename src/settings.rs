//! From the parsed config to what one door runs with, in one step: the door chosen and its
//! policy, the timings, the decision rule, offline grace in milliseconds, the outbox's size.
//! Derived values are computed here once; nothing downstream falls back to a default of its own.

use std::time::Duration;

use crate::auth::DoorPolicy;
use crate::config::{Config, ConfigError};
use crate::daemon::liveness::LivenessConfig;
use crate::daemon::machine::MachineConfig;
use crate::matching::{DecisionRule, MatchingConfig};

/// How many audit events the outbox keeps while the sink cannot take them.
pub const OUTBOX_CAPACITY: usize = 10_000;

/// Offline grace, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineSettings {
    /// How long after a user's last online sign-in they may be admitted offline.
    pub grace_ms: u64,
    /// The lowest threshold an offline match may use (stricter than online).
    pub floor: f32,
    /// How often grants are checked with the backend.
    pub revalidate_ms: u64,
}

/// Everything the daemon runs with for one door.
#[derive(Debug, Clone, PartialEq)]
pub struct DoorSettings {
    pub door: String,
    pub policy: DoorPolicy,
    pub machine: MachineConfig,
    pub liveness: LivenessConfig,
    pub matching: MatchingConfig,
    /// The decision rule for the embedded backend's scores.
    pub rule: DecisionRule,
    pub offline: OfflineSettings,
    pub outbox_capacity: usize,
    /// The door contact may stay open this long before a held-open alarm.
    pub held_open_ms: u64,
    /// A frame older than this means the camera is down (health, camera events).
    pub max_frame_age_ms: u64,
}

impl DoorSettings {
    /// The settings of `door` (the config's first door when `None`).
    pub fn resolve(config: &Config, door: Option<&str>) -> Result<Self, ConfigError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        let name = match door {
            Some(name) => name.to_string(),
            None => config
                .doors
                .keys()
                .next()
                .cloned()
                .ok_or_else(|| ConfigError::Invalid(vec!["no door configured".into()]))?,
        };
        let policy = config.doors.get(&name).cloned().ok_or_else(|| {
            ConfigError::Invalid(vec![format!(
                "no door {name:?} in the config (doors: {})",
                config.doors.keys().cloned().collect::<Vec<_>>().join(", ")
            )])
        })?;
        Ok(Self {
            door: name,
            policy,
            machine: config.daemon.clone(),
            liveness: config.liveness.clone(),
            matching: config.matching.clone(),
            rule: config.matching.rule(),
            offline: OfflineSettings {
                grace_ms: config.offline.grace_secs.saturating_mul(1000),
                floor: config.offline.match_threshold,
                revalidate_ms: config.offline.revalidate_secs.saturating_mul(1000),
            },
            outbox_capacity: OUTBOX_CAPACITY,
            held_open_ms: config.relay.held_open_ms,
            max_frame_age_ms: config.monitoring.max_frame_age_ms,
        })
    }

    /// How long one unlock lasts.
    pub fn unlock(&self) -> Duration {
        Duration::from_millis(self.machine.unlock_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_door_is_the_default_and_an_unknown_door_is_named() {
        let config = Config::from_toml(
            "[doors.front]\nallowed_groups = [\"staff\"]\n[doors.lab]\nallowed_groups = [\"it\"]\n",
        )
        .unwrap();
        let front = DoorSettings::resolve(&config, None).unwrap();
        assert_eq!(front.door, "front");
        assert_eq!(front.offline.grace_ms, config.offline.grace_secs * 1000);
        let lab = DoorSettings::resolve(&config, Some("lab")).unwrap();
        assert_eq!(lab.policy.allowed_groups, vec!["it".to_string()]);
        let err = DoorSettings::resolve(&config, Some("roof")).unwrap_err();
        assert!(err.to_string().contains("front, lab"), "{err}");
    }
}
