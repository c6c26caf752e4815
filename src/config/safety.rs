//! The checks that keep a config from switching security off: no NaN or infinity anywhere
//! (NaN fails every comparison, so it slips through `min < max`), and a safe range for every
//! value that weakens a check when pushed to an extreme. Each message names the key and says
//! the range. Sections whose types live here check themselves; the daemon's timings, liveness
//! and offline grace are checked below.

use super::Config;
use crate::daemon::liveness::LivenessConfig;
use crate::daemon::machine::MachineConfig;
use crate::daemon::offline::OfflineConfig;

/// The longest offline grace a config may set: a week.
pub const MAX_GRACE_SECS: u64 = 7 * 86_400;

/// Every problem of this kind in `config`.
pub(super) fn problems(config: &Config) -> Vec<String> {
    let mut problems = non_finite(config);
    problems.extend(config.vision.detector.problems());
    problems.extend(config.vision.quality.problems());
    problems.extend(config.vision.images.problems());
    problems.extend(config.backend.embedded.problems());
    for (name, door) in &config.doors {
        problems.extend(door.problems(name));
    }
    problems.extend(daemon(&config.daemon));
    problems.extend(liveness(&config.liveness));
    problems.extend(offline(&config.offline));
    let (w, h) = (config.camera.width, config.camera.height);
    let ratio = crate::vision::image_io::MAX_ASPECT_RATIO;
    if w.max(h) > w.min(h).saturating_mul(ratio) {
        problems.push(format!(
            "camera.width x camera.height = {w}x{h} is thinner than {ratio}:1: frames of that \
             shape are refused like any such image"
        ));
    }
    problems
}

/// Every float in `config` that is NaN or infinite, by its key.
fn non_finite(config: &Config) -> Vec<String> {
    fn walk(value: &toml::Value, key: &str, out: &mut Vec<String>) {
        match value {
            toml::Value::Float(f) if !f.is_finite() => out.push(format!(
                "{key} = {f} is not a finite number: NaN and infinity are refused everywhere"
            )),
            toml::Value::Table(table) => table.iter().for_each(|(k, v)| {
                let key = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                walk(v, &key, out)
            }),
            toml::Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, v)| walk(v, &format!("{key}[{i}]"), out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match toml::Value::try_from(config) {
        Ok(value) => walk(&value, "", &mut out),
        Err(e) => out.push(format!("the config cannot be checked for NaN: {e}")),
    }
    out
}

/// `problems` without the ones about a key already reported as NaN or infinite: a NaN fails
/// every range check too, and one message per key is enough.
pub(super) fn without_repeats(problems: Vec<String>) -> Vec<String> {
    let non_finite: Vec<String> = problems
        .iter()
        .filter(|p| p.contains(" is not a finite number"))
        .filter_map(|p| p.split_once(" = ").map(|(key, _)| key.to_string()))
        .collect();
    problems
        .into_iter()
        .filter(|p| {
            p.contains(" is not a finite number")
                || !non_finite
                    .iter()
                    .any(|key| p.starts_with(&format!("{key} ")))
        })
        .collect()
}

/// `key = value` outside `low..=high`, unless the value is not finite (reported once, above).
fn out_of(key: &str, value: f32, low: f32, high: f32, why: &str) -> Option<String> {
    (value.is_finite() && !(low..=high).contains(&value))
        .then(|| format!("{key} = {value} must be {low} to {high}: {why}"))
}

fn daemon(d: &MachineConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if !(500..=60_000).contains(&d.rearm_ms) {
        problems.push(format!(
            "daemon.rearm_ms = {} must be 500 to 60000: faces are ignored this long after the \
             door relocks, so the next face is not let in on the heels of the last",
            d.rearm_ms
        ));
    }
    problems
}

fn liveness(l: &LivenessConfig) -> Vec<String> {
    [
        out_of(
            "liveness.min_jitter",
            l.min_jitter,
            0.001,
            0.1,
            "below it a photo held still passes as a live face",
        ),
        out_of(
            "liveness.max_jitter",
            l.max_jitter,
            0.01,
            1.0,
            "above it a track may jump between two faces",
        ),
        out_of(
            "liveness.min_yaw_spread",
            l.min_yaw_spread,
            0.001,
            0.2,
            "below it a face that never turns passes as live",
        ),
        out_of(
            "liveness.head_turn_yaw",
            l.head_turn_yaw,
            0.05,
            0.8,
            "a turn smaller than that is noise",
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn offline(o: &OfflineConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if o.grace_secs > MAX_GRACE_SECS {
        problems.push(format!(
            "offline.grace_secs = {} must be 0 to {MAX_GRACE_SECS} (7 days): a longer grace keeps \
             disabled users' faces working through an outage for that long",
            o.grace_secs
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(toml: &str) -> Vec<String> {
        let config: Config = toml::from_str(toml).unwrap();
        config.problems()
    }

    fn refused(toml: &str, key: &str, range: &str) {
        let problems = problems_of(toml);
        assert!(
            problems
                .iter()
                .any(|p| p.contains(key) && p.contains(range)),
            "{toml:?} was not refused with {key} and {range:?}: {problems:?}"
        );
    }

    #[test]
    fn the_shipped_defaults_pass() {
        assert_eq!(problems_of(""), Vec::<String>::new());
    }

    #[test]
    fn nan_and_infinity_are_refused_in_every_float() {
        for (toml, key) in [
            (
                "[liveness]\nmin_jitter = nan\n",
                "liveness.min_jitter = NaN",
            ),
            (
                "[liveness]\nmax_jitter = nan\n",
                "liveness.max_jitter = NaN",
            ),
            (
                "[vision.quality]\nmax_roll_deg = nan\n",
                "vision.quality.max_roll_deg = NaN",
            ),
            (
                "[vision.quality]\nmin_face_px = -inf\n",
                "vision.quality.min_face_px = -inf",
            ),
            (
                "[vision.quality]\nmax_yaw = inf\n",
                "vision.quality.max_yaw = inf",
            ),
            (
                "[backend.aws]\nconnect_timeout_secs = inf\n",
                "backend.aws.connect_timeout_secs = inf",
            ),
            (
                "[vision.detector]\nnms_threshold = nan\n",
                "vision.detector.nms_threshold = NaN",
            ),
        ] {
            refused(toml, key, "not a finite number");
        }
    }

    #[test]
    fn values_that_switch_a_check_off_are_refused_with_the_safe_range() {
        for (toml, key, range) in [
            (
                "[daemon]\nrearm_ms = 0\n",
                "daemon.rearm_ms",
                "500 to 60000",
            ),
            (
                "[daemon]\nrearm_ms = 18446744073709551615\n",
                "daemon.rearm_ms",
                "500 to 60000",
            ),
            (
                "[liveness]\nmin_jitter = 0.0\n",
                "liveness.min_jitter",
                "0.001 to 0.1",
            ),
            (
                "[liveness]\nmin_jitter = -1.0\n",
                "liveness.min_jitter",
                "0.001 to 0.1",
            ),
            (
                "[liveness]\nmin_yaw_spread = 0.0\n",
                "liveness.min_yaw_spread",
                "0.001 to 0.2",
            ),
            (
                "[liveness]\nmin_yaw_spread = -0.5\n",
                "liveness.min_yaw_spread",
                "0.001 to 0.2",
            ),
            (
                "[vision.quality]\nmin_face_px = -1e9\n",
                "vision.quality.min_face_px",
                "40 to 4096",
            ),
            (
                "[vision.quality]\nmax_yaw = 5.0\n",
                "vision.quality.max_yaw",
                "0.05 to 0.8",
            ),
            (
                "[offline]\ngrace_secs = 18446744073709551615\n",
                "offline.grace_secs",
                "0 to 604800",
            ),
            // 18446744073709552 s is 384 ms once multiplied by 1000 and wrapped.
            (
                "[offline]\ngrace_secs = 18446744073709552\n",
                "offline.grace_secs",
                "0 to 604800",
            ),
            (
                "[vision.images]\nmax_pixels = 18446744073709551615\n",
                "vision.images.max_pixels",
                "1 to 100000000",
            ),
            (
                "[vision.images]\nmax_bytes = 18446744073709551615\n",
                "vision.images.max_bytes",
                "1 to 67108864",
            ),
            (
                "[vision.detector]\nmax_side = 100000\n",
                "vision.detector.max_side",
                "64 to 1920",
            ),
            (
                "[camera]\nwidth = 4096\nheight = 16\n",
                "camera.width x camera.height",
                "8:1",
            ),
            (
                "[doors.front]\nallowed_groups = [\"\"]\n",
                "doors.front.allowed_groups",
                "empty",
            ),
            (
                "[monitoring]\nlisten = \"0.0.0.0:9464\"\n",
                "monitoring.listen",
                "monitoring.allow_remote = true",
            ),
            (
                "[web]\nenabled = true\nlisten = \"0.0.0.0:8080\"\n",
                "web.listen",
                "not a loopback address",
            ),
            (
                "[backend.embedded]\nrefresh_validity_secs = 18446744073709551615\n",
                "backend.embedded.refresh_validity_secs",
                "60 to",
            ),
        ] {
            refused(toml, key, range);
        }
    }

    #[test]
    fn a_nan_is_reported_once_per_key() {
        let problems = problems_of("[vision.quality]\nmax_roll_deg = nan\nmin_brightness = nan\n");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn a_remote_listener_is_accepted_when_asked_for() {
        let ok = "[monitoring]\nlisten = \"0.0.0.0:9464\"\nallow_remote = true\n";
        assert_eq!(problems_of(ok), Vec::<String>::new());
        assert_eq!(
            problems_of("[monitoring]\nlisten = \"[::1]:9464\"\n"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_aws_timeouts_are_bounded() {
        let aws = "[backend]\nkind = \"aws\"\n[backend.aws]\nuser_pool_id = \"p\"\n\
                   client_id = \"c\"\nsignin_bucket = \"i\"\nsignup_bucket = \"u\"\n";
        assert_eq!(problems_of(aws), Vec::<String>::new());
        for value in ["1e30", "0.0", "-2.0", "61.0"] {
            refused(
                &format!("{aws}connect_timeout_secs = {value}\n"),
                "backend.aws.connect_timeout_secs",
                "at most 60 seconds",
            );
        }
    }
}
