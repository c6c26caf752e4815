//! The configuration file: TOML in, a validated [`Config`] out.
//!
//! Parsing takes a string so tests never touch /etc; unknown keys are errors (a typo must not
//! silently fall back to a default on a door lock); validation reports every problem at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::auth::DoorPolicy;
use crate::backend::aws::AwsConfig;
use crate::backend::embedded::EmbeddedConfig;
use crate::camera::{CameraConfig, CameraKind};
use crate::daemon::OfflineConfig;
use crate::daemon::liveness::LivenessConfig;
use crate::daemon::machine::MachineConfig;
use crate::door::{DoorIoConfig, RelayKind};
use crate::matching::MatchingConfig;
use crate::monitor::MonitoringConfig;
use crate::sinks::mqtt::MqttConfig;
use crate::sinks::webhook::WebhooksConfig;
use crate::vision::VisionConfig;
use crate::web::WebConfig;

mod safety;

/// Where `--config` points when it is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/facegate/facegate.toml";

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config is not valid TOML or has an unknown key:\n{0}")]
    Syntax(String),
    #[error("config has {} problem(s):\n  - {}", .0.len(), .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// Where state lives when neither the config nor `--data` says.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/facegate";

/// The loosest 1:1 threshold accepted: `facegate compare` and the floor of offline grace.
const MIN_MATCH_THRESHOLD: f32 = 0.3;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the store (users, faces, keys, grants, audit) lives.
    pub data_dir: PathBuf,
    pub vision: VisionConfig,
    /// The decision rule: how sure the door must be of who a face is.
    pub matching: MatchingConfig,
    pub backend: BackendConfig,
    /// Door policies by door name.
    pub doors: BTreeMap<String, DoorPolicy>,
    /// Timings of the door's state machine.
    pub daemon: MachineConfig,
    pub liveness: LivenessConfig,
    pub offline: OfflineConfig,
    pub camera: CameraConfig,
    pub relay: DoorIoConfig,
    pub monitoring: MonitoringConfig,
    /// Signed HTTP POSTs of the door's events; off while no target is given.
    pub webhooks: WebhooksConfig,
    /// Events, state and Home Assistant discovery over MQTT; off while no host is given.
    pub mqtt: MqttConfig,
    /// The web console and kiosk screen (docs/web.md); off unless enabled.
    pub web: WebConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            vision: VisionConfig::default(),
            matching: MatchingConfig::default(),
            backend: BackendConfig::default(),
            doors: [(
                "front".to_string(),
                DoorPolicy {
                    allowed_groups: vec!["staff".into()],
                },
            )]
            .into_iter()
            .collect(),
            daemon: MachineConfig::default(),
            liveness: LivenessConfig::default(),
            offline: OfflineConfig::default(),
            camera: CameraConfig::default(),
            relay: DoorIoConfig::default(),
            monitoring: MonitoringConfig::default(),
            webhooks: WebhooksConfig::default(),
            mqtt: MqttConfig::default(),
            web: WebConfig::default(),
        }
    }
}

/// Which identity backend answers the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Everything on the device.
    #[default]
    Embedded,
    /// Cognito, S3, Rekognition and DynamoDB (docs/aws.md).
    Aws,
}

/// Config section `[backend]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    pub kind: BackendKind,
    pub embedded: EmbeddedConfig,
    pub aws: AwsConfig,
}

impl Config {
    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Reads `path`; when `path` is the default and does not exist, the defaults apply.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::from_toml(&text),
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Config::default())
            }
            Err(error) => Err(ConfigError::Io { path, error }),
        }
    }

    /// Every value that is out of range, as a sentence naming the key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = safety::problems(self);
        let v = &self.vision;
        let mut unit = |key: &str, value: f32| {
            if !(0.0..=1.0).contains(&value) {
                problems.push(format!("{key} = {value} must be between 0 and 1"));
            }
        };
        unit(
            "vision.detector.score_threshold",
            v.detector.score_threshold,
        );
        unit("vision.detector.nms_threshold", v.detector.nms_threshold);
        unit("vision.quality.min_score", v.quality.min_score);
        if !(MIN_MATCH_THRESHOLD..=1.0).contains(&v.match_threshold) {
            problems.push(format!(
                "vision.match_threshold = {} must be a cosine similarity between \
                 {MIN_MATCH_THRESHOLD} and 1: below that SFace calls different people one person \
                 (its reference threshold is 0.363), and offline grace may not go below it",
                v.match_threshold
            ));
        }
        if v.threads == 0 || v.threads > 64 {
            problems.push(format!("vision.threads = {} must be 1 to 64", v.threads));
        }
        if v.detector.top_k == 0 {
            problems.push("vision.detector.top_k must be at least 1".into());
        }
        if v.quality.min_brightness > v.quality.max_brightness {
            problems.push(format!(
                "vision.quality.min_brightness ({}) is above max_brightness ({})",
                v.quality.min_brightness, v.quality.max_brightness
            ));
        }
        if v.images.max_bytes == 0 || v.images.max_pixels == 0 {
            problems.push("vision.images.max_bytes and max_pixels must be above 0".into());
        }
        problems.extend(self.matching.problems());
        let e = &self.backend.embedded;
        if e.issuer.is_empty() || e.client_id.is_empty() {
            problems.push("backend.embedded.issuer and client_id must not be empty".into());
        }
        if !(60..=86_400).contains(&e.token_validity_secs) {
            problems.push(format!(
                "backend.embedded.token_validity_secs = {} must be 60 to 86400",
                e.token_validity_secs
            ));
        }
        if e.max_image_bytes == 0 {
            problems.push("backend.embedded.max_image_bytes must be above 0".into());
        }
        if !(1..=100).contains(&e.lockout_failures) {
            problems.push(format!(
                "backend.embedded.lockout_failures = {} must be 1 to 100",
                e.lockout_failures
            ));
        }
        if !(60..=86_400).contains(&e.lockout_window_secs) {
            problems.push(format!(
                "backend.embedded.lockout_window_secs = {} must be 60 to 86400",
                e.lockout_window_secs
            ));
        }
        if self.backend.kind == BackendKind::Aws {
            problems.extend(self.backend.aws.problems());
        }
        if self.doors.is_empty() {
            problems.push("no [doors.NAME] section: facegate needs at least one door".into());
        }
        let d = &self.daemon;
        if !(500..=60_000).contains(&d.unlock_ms) {
            problems.push(format!(
                "daemon.unlock_ms = {} must be 500 to 60000 (an unlock is always bounded)",
                d.unlock_ms
            ));
        }
        let steps = &d.deny_cooldowns_ms;
        if steps.is_empty()
            || steps.len() > 8
            || steps.iter().any(|ms| !(500..=3_600_000).contains(ms))
            || steps.windows(2).any(|w| w[0] > w[1])
        {
            problems.push(format!(
                "daemon.deny_cooldowns_ms = {steps:?} must be 1 to 8 steps of 500 to 3600000 ms, \
                 never getting shorter (each denial in a row waits the next step)"
            ));
        }
        if d.auth_timeout_ms == 0 || d.track_timeout_ms == 0 {
            problems.push("daemon.auth_timeout_ms and track_timeout_ms must be above 0".into());
        }
        let l = &self.liveness;
        if l.min_frames < 2 {
            problems.push(format!(
                "liveness.min_frames = {} must be at least 2",
                l.min_frames
            ));
        }
        let most = crate::daemon::MAX_TRACK_FRAMES;
        if !(l.min_frames..=most).contains(&l.max_frames) {
            problems.push(format!(
                "liveness.max_frames = {} must be between liveness.min_frames ({}) and {most}",
                l.max_frames, l.min_frames
            ));
        }
        if l.min_jitter >= l.max_jitter {
            problems.push(format!(
                "liveness.min_jitter ({}) must be below max_jitter ({})",
                l.min_jitter, l.max_jitter
            ));
        }
        if l.head_turn && l.head_turn_yaw >= v.quality.max_yaw {
            problems.push(format!(
                "liveness.head_turn_yaw ({}) must be below vision.quality.max_yaw ({}): a face \
                 turned that far is refused by the quality gate",
                l.head_turn_yaw, v.quality.max_yaw
            ));
        }
        let o = &self.offline;
        let online_valid = (MIN_MATCH_THRESHOLD..=1.0).contains(&self.vision.match_threshold);
        if online_valid && !(self.vision.match_threshold..=1.0).contains(&o.match_threshold) {
            problems.push(format!(
                "offline.match_threshold = {} must be between vision.match_threshold ({}) and 1: \
                 offline decisions are stricter, never looser",
                o.match_threshold, self.vision.match_threshold
            ));
        }
        if !(10..=86_400).contains(&o.revalidate_secs) {
            problems.push(format!(
                "offline.revalidate_secs = {} must be 10 to 86400",
                o.revalidate_secs
            ));
        }
        problems.extend(self.camera_problems());
        problems.extend(self.relay_problems());
        problems.extend(self.monitoring.problems());
        problems.extend(self.webhooks.problems());
        problems.extend(self.mqtt.problems());
        problems.extend(self.web.problems());
        for (name, door) in &self.doors {
            if door.allowed_groups.is_empty() {
                problems.push(format!(
                    "doors.{name}.allowed_groups is empty: the door would open for nobody"
                ));
            }
        }
        safety::without_repeats(problems)
    }
}

impl Config {
    /// The largest frame or photo the backend accepts, bytes.
    pub fn max_image_bytes(&self) -> u64 {
        match self.backend.kind {
            BackendKind::Embedded => self.backend.embedded.max_image_bytes,
            BackendKind::Aws => crate::backend::triggers::TriggerConfig::default().max_image_bytes,
        }
    }

    fn camera_problems(&self) -> Vec<String> {
        let c = &self.camera;
        let mut problems = Vec::new();
        if !(1..=60).contains(&c.fps) {
            problems.push(format!("camera.fps = {} must be 1 to 60", c.fps));
        }
        if !(16..=4096).contains(&c.width) || !(16..=4096).contains(&c.height) {
            problems.push(format!(
                "camera.width x camera.height = {}x{} must be 16 to 4096 each",
                c.width, c.height
            ));
        }
        if c.kind == CameraKind::Replay && c.replay_dir.is_none() {
            problems.push("camera.kind = \"replay\" needs camera.replay_dir".into());
        }
        problems
    }

    fn relay_problems(&self) -> Vec<String> {
        let r = &self.relay;
        let mut problems = Vec::new();
        if r.kind == RelayKind::Gpio && r.pin.is_none() {
            problems.push("relay.kind = \"gpio\" needs relay.pin (the relay's BCM pin)".into());
        }
        let pins = r.pins();
        for (key, pin) in &pins {
            if *pin > 27 {
                problems.push(format!("{key} = {pin}: the Pi's BCM GPIO pins are 0 to 27"));
            }
            if let Some((other, _)) = pins.iter().find(|(k, p)| p == pin && k < key) {
                problems.push(format!("{key} and {other} are both pin {pin}"));
            }
        }
        if r.kind == RelayKind::Simulated && !pins.is_empty() {
            problems.push(
                "relay pins are set but relay.kind = \"simulated\": set kind = \"gpio\"".into(),
            );
        }
        if !(50..=10_000).contains(&r.indicator_ms) {
            problems.push(format!(
                "relay.indicator_ms = {} must be 50 to 10000",
                r.indicator_ms
            ));
        }
        if r.held_open_ms < 1_000 {
            problems.push(format!(
                "relay.held_open_ms = {} must be at least 1000",
                r.held_open_ms
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::RuntimeKind;

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn values_are_read() {
        let c = Config::from_toml(
            "[vision]\nruntime = \"tract\"\nthreads = 2\nmatch_threshold = 0.5\n[vision.detector]\nmax_side = 320\n",
        )
        .unwrap();
        assert_eq!(c.vision.runtime, RuntimeKind::Tract);
        assert_eq!(c.vision.threads, 2);
        assert_eq!(c.vision.match_threshold, 0.5);
        assert_eq!(c.vision.detector.max_side, 320);
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name() {
        let err = Config::from_toml("[vision]\nmatch_treshold = 0.5\n").unwrap_err();
        assert!(err.to_string().contains("match_treshold"), "{err}");
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let err = Config::from_toml(
            "[vision]\nthreads = 0\nmatch_threshold = 3.0\n[vision.detector]\nscore_threshold = 1.5\n",
        )
        .unwrap_err();
        let ConfigError::Invalid(problems) = &err else {
            panic!("expected Invalid, got {err}");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        let text = err.to_string();
        for key in [
            "vision.threads",
            "vision.match_threshold",
            "vision.detector.score_threshold",
        ] {
            assert!(text.contains(key), "{text}");
        }
    }

    #[test]
    fn a_one_to_one_threshold_that_matches_anyone_is_refused() {
        for loose in ["0.0", "-1.0", "0.29"] {
            let err =
                Config::from_toml(&format!("[vision]\nmatch_threshold = {loose}\n")).unwrap_err();
            assert!(
                err.to_string().contains("vision.match_threshold"),
                "{loose}: {err}"
            );
        }
        assert!(Config::from_toml("[vision]\nmatch_threshold = 0.363\n").is_ok());
    }

    #[test]
    fn offline_matching_may_not_be_looser_than_online() {
        let err = Config::from_toml("[offline]\nmatch_threshold = 0.2\n").unwrap_err();
        assert!(err.to_string().contains("offline.match_threshold"), "{err}");
        let err = Config::from_toml("[daemon]\nunlock_ms = 3600000\n").unwrap_err();
        assert!(err.to_string().contains("daemon.unlock_ms"), "{err}");
    }

    #[test]
    fn gpio_pins_are_checked_for_range_clashes_and_kind() {
        let err = Config::from_toml(
            "[relay]\nkind = \"gpio\"\ncontact_pin = 40\nexit_pin = 5\ngreen_pin = 5\n",
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in ["needs relay.pin", "relay.contact_pin = 40", "both pin 5"] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        let ok = Config::from_toml("[relay]\nkind = \"gpio\"\npin = 17\nactive_low = true\n");
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn the_aws_backend_needs_the_stack_outputs() {
        let err = Config::from_toml("[backend]\nkind = \"aws\"\n").unwrap_err();
        let text = err.to_string();
        for key in [
            "user_pool_id",
            "client_id",
            "signin_bucket",
            "signup_bucket",
        ] {
            assert!(
                text.contains(&format!("backend.aws.{key}")),
                "{key}: {text}"
            );
        }
        let ok = Config::from_toml(
            "[backend]\nkind = \"aws\"\n[backend.aws]\nregion = \"eu-west-1\"\n\
             user_pool_id = \"eu-west-1_abc\"\nclient_id = \"c\"\n\
             signin_bucket = \"in\"\nsignup_bucket = \"up\"\n",
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn attempt_limits_cannot_be_switched_off() {
        for bad in [
            "[daemon]\ndeny_cooldowns_ms = []\n",
            "[daemon]\ndeny_cooldowns_ms = [0]\n",
            "[daemon]\ndeny_cooldowns_ms = [30000, 3000]\n",
            "[daemon]\ndeny_cooldowns_ms = [9223372036854775807]\n",
        ] {
            let err = Config::from_toml(bad).unwrap_err();
            assert!(
                err.to_string().contains("daemon.deny_cooldowns_ms"),
                "{bad}: {err}"
            );
        }
        let err = Config::from_toml("[backend.embedded]\nlockout_failures = 0\n").unwrap_err();
        assert!(err.to_string().contains("lockout_failures"), "{err}");
        let err = Config::from_toml("[liveness]\nmax_frames = 3\n").unwrap_err();
        assert!(err.to_string().contains("liveness.max_frames"), "{err}");
        let err = Config::from_toml("[matching]\ntarget_fpir = 0.5\n").unwrap_err();
        assert!(err.to_string().contains("matching.target_fpir"), "{err}");
        let err = Config::from_toml("[matching]\nfixed_threshold = 0.0\n").unwrap_err();
        assert!(
            err.to_string().contains("matching.fixed_threshold"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_explicit_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/facegate.toml"))).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
    }
}
