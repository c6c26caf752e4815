//! Configs that switch security off, or crash the service, handed to `facegate` (SECURITY.md
//! rule 14). `check-config` and every command that loads the config refuse them with exit 78
//! and a message naming the key and its safe range; none of them passes and then panics.

mod common;

use std::time::Duration;

use common::facegate_within;

/// The sections an AWS config needs, with `extra` appended to `[backend.aws]`.
fn aws(extra: &str) -> String {
    format!(
        "[backend]\nkind = \"aws\"\n[backend.aws]\nregion = \"eu-west-1\"\n\
         user_pool_id = \"eu-west-1_abc\"\nclient_id = \"c\"\nsignin_bucket = \"in\"\n\
         signup_bucket = \"up\"\n{extra}"
    )
}

/// `facegate --config FILE ARGS` on `toml`: its output.
fn with_config(toml: &str, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("facegate.toml");
    std::fs::write(&path, toml).unwrap();
    let data = dir.path().join("data");
    let mut all = vec![
        "--config",
        path.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    facegate_within(&all, Duration::from_secs(60))
}

/// Exit 78 (a bad config, which systemd does not restart) naming `needles`.
fn assert_refused(out: &std::process::Output, needles: &[&str]) {
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{:?}: {text}", out.status);
    for needle in needles {
        assert!(text.contains(needle), "expected {needle:?} in: {text}");
    }
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn an_infinite_aws_timeout_is_refused_instead_of_panicking_in_auth_and_run() {
    for value in ["inf", "1e30", "nan"] {
        let toml = aws(&format!("connect_timeout_secs = {value}\n"));
        let photo = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        for args in [
            vec!["check-config"],
            vec!["auth", "--photo", photo],
            vec!["run"],
        ] {
            let out = with_config(&toml, &args);
            assert_refused(&out, &["backend.aws.connect_timeout_secs"]);
        }
    }
    let toml = aws("operation_timeout_secs = 1e30\n");
    assert_refused(
        &with_config(&toml, &["check-config"]),
        &["backend.aws.operation_timeout_secs", "at most 120 seconds"],
    );
}

#[test]
fn check_config_refuses_every_value_that_switches_security_off() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[daemon]\nrearm_ms = 0\n",
            &["daemon.rearm_ms = 0", "500 to 60000"],
        ),
        (
            "[daemon]\nrearm_ms = 18446744073709551615\n",
            &["daemon.rearm_ms", "500 to 60000"],
        ),
        (
            "[liveness]\nmin_jitter = 0.0\n",
            &["liveness.min_jitter", "0.001 to 0.1"],
        ),
        (
            "[liveness]\nmin_jitter = -0.01\n",
            &["liveness.min_jitter", "0.001 to 0.1"],
        ),
        (
            "[liveness]\nmin_jitter = nan\n",
            &["liveness.min_jitter = NaN", "not a finite number"],
        ),
        (
            "[liveness]\nmin_yaw_spread = 0.0\n",
            &["liveness.min_yaw_spread", "0.001 to 0.2"],
        ),
        (
            "[liveness]\nmin_yaw_spread = -1.0\n",
            &["liveness.min_yaw_spread", "0.001 to 0.2"],
        ),
        (
            "[liveness]\nmin_yaw_spread = nan\n",
            &["liveness.min_yaw_spread = NaN"],
        ),
        (
            "[vision.quality]\nmin_face_px = -inf\n",
            &["vision.quality.min_face_px = -inf"],
        ),
        (
            "[vision.quality]\nmax_yaw = inf\n",
            &["vision.quality.max_yaw = inf"],
        ),
        (
            "[vision.quality]\nmax_roll_deg = nan\n",
            &["vision.quality.max_roll_deg = NaN"],
        ),
        (
            "[offline]\ngrace_secs = 18446744073709551615\n",
            &["offline.grace_secs", "0 to 604800"],
        ),
        (
            "[offline]\ngrace_secs = 18446744073709552\n",
            &["offline.grace_secs", "0 to 604800"],
        ),
        (
            "[vision.images]\nmax_pixels = 18446744073709551615\n",
            &["vision.images.max_pixels", "1 to 100000000"],
        ),
        (
            "[vision.images]\nmax_bytes = 18446744073709551615\n",
            &["vision.images.max_bytes", "1 to 67108864"],
        ),
        (
            "[doors.front]\nallowed_groups = [\"\"]\n",
            &["doors.front.allowed_groups", "empty"],
        ),
        (
            "[monitoring]\nlisten = \"0.0.0.0:9464\"\n",
            &["monitoring.listen", "monitoring.allow_remote = true"],
        ),
    ];
    for (toml, needles) in cases {
        assert_refused(&with_config(toml, &["check-config"]), needles);
    }
}

#[test]
fn a_remote_monitoring_listener_passes_only_when_asked_for() {
    let toml = "[monitoring]\nlisten = \"0.0.0.0:9464\"\nallow_remote = true\n";
    let out = with_config(toml, &["check-config"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
