//! Each check of `facegate doctor`, in the order a deployer fixes things.
//!
//! The doctor must never harm the installation it inspects: it drives no output unless
//! `--pulse`, and it never creates or opens a store that belongs to another user (run as root,
//! opening the service's sled files would leave root-owned files the service cannot write).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Check, DoctorArgs, backend, sinks};
use crate::cli::{GlobalArgs, load_config};
use crate::clock::SystemClock;
use crate::config::{BackendKind, Config};
use crate::door::{Door, RelayKind};
use crate::vision::FaceEngine;

/// Every check; the ones that need a valid config are skipped without one.
pub async fn run_all(global: &GlobalArgs, args: &DoctorArgs) -> Vec<Check> {
    let mut checks = Vec::new();
    match load_config(global) {
        Ok(config) => {
            checks.push(config_check(global, &config));
            checks.push(data_dir(&config.data_dir));
            let (models, engine) = models(&config);
            checks.push(models);
            checks.push(camera(&config, Duration::from_secs(args.camera_timeout)));
            checks.push(relay(&config, args.pulse));
            match config.backend.kind {
                BackendKind::Embedded => checks.extend(backend::embedded(&config, engine)),
                BackendKind::Aws => checks.extend(backend::aws(&config).await),
            }
            checks.extend(sinks::webhooks(&config.webhooks).await);
            checks.extend(sinks::mqtt(&config.mqtt).await);
        }
        Err(failure) => {
            checks.push(Check::fail(
                "config",
                format!("{:#}", failure.error),
                "edit the file; `facegate check-config` lists every problem, and \
                 config/facegate.toml documents every key",
            ));
            for name in ["data dir", "models", "camera", "relay", "backend"] {
                checks.push(Check::skip(name, "needs a valid config"));
            }
        }
    }
    checks.push(clock_check(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        build_epoch(),
    ));
    checks
}

fn config_check(global: &GlobalArgs, config: &Config) -> Check {
    let backend = match config.backend.kind {
        BackendKind::Embedded => "embedded",
        BackendKind::Aws => "aws",
    };
    let doors: Vec<&str> = config.doors.keys().map(String::as_str).collect();
    let summary = format!("backend {backend}, door(s) {}", doors.join(", "));
    let default = Path::new(crate::config::DEFAULT_CONFIG_PATH);
    if global.config.is_none() && !default.exists() {
        return Check::warn(
            "config",
            format!("no {}: the defaults apply ({summary})", default.display()),
            "install the package's config, or pass --config PATH",
        );
    }
    Check::ok("config", format!("valid; {summary}"))
}

/// The effective user id: the owner of `/proc/self` (no libc call needed).
fn effective_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Whether this process may open the sled store `name` in `dir` without harming it.
pub(super) enum StoreAccess {
    Absent,
    OwnedByOther(u32),
    Usable,
}

pub(super) fn store_access(dir: &Path, name: &str) -> StoreAccess {
    match std::fs::metadata(dir.join(name)) {
        Err(_) => StoreAccess::Absent,
        Ok(meta) if Some(meta.uid()) != effective_uid() => StoreAccess::OwnedByOther(meta.uid()),
        Ok(_) => StoreAccess::Usable,
    }
}

pub(super) const RUN_AS_SERVICE: &str =
    "run the doctor as the service's user: sudo -u facegate facegate doctor";

fn data_dir(dir: &Path) -> Check {
    const NAME: &str = "data dir";
    let meta = match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => meta,
        Ok(_) => {
            return Check::fail(
                NAME,
                format!("{} is not a directory", dir.display()),
                "set data_dir to a directory",
            );
        }
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{}: {e}", dir.display()),
                "the package creates /var/lib/facegate; otherwise `install -d -m 0700 -o \
                 facegate DIR` and point data_dir at it",
            );
        }
    };
    if Some(meta.uid()) != effective_uid() {
        return Check::warn(
            NAME,
            format!(
                "{} belongs to uid {}, not to this user: not opened",
                dir.display(),
                meta.uid()
            ),
            RUN_AS_SERVICE,
        );
    }
    if let Err(e) = tempfile::tempfile_in(dir) {
        return Check::fail(
            NAME,
            format!("{} is not writable: {e}", dir.display()),
            "the service's user must own it: chown -R facegate: DIR",
        );
    }
    let store = match store_access(dir, "daemon.sled") {
        StoreAccess::Usable => match sled::open(dir.join("daemon.sled")) {
            Ok(_) => "its store opens".to_string(),
            Err(e) if is_locked(&e.to_string()) => {
                "its store is in use by the running service".into()
            }
            Err(e) => {
                return Check::fail(
                    NAME,
                    format!("the store in {} does not open: {e}", dir.display()),
                    "restore the data directory from a backup (docs/operations.md)",
                );
            }
        },
        StoreAccess::OwnedByOther(uid) => format!("its store belongs to uid {uid}: not opened"),
        StoreAccess::Absent => "no store yet (made at the first start)".into(),
    };
    let detail = format!("{} writable; {store}", dir.display());
    if meta.permissions().mode() & 0o077 != 0 {
        return Check::warn(
            NAME,
            detail,
            format!("others may read it: chmod 700 {}", dir.display()),
        );
    }
    Check::ok(NAME, detail)
}

pub(super) fn is_locked(error: &str) -> bool {
    error.contains("could not acquire lock") || error.contains("another facegate process")
}

fn models(config: &Config) -> (Check, Option<FaceEngine>) {
    let started = Instant::now();
    let dir = config.vision.resolved_model_dir();
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    match FaceEngine::load(&config.vision) {
        Ok(engine) => (
            Check::ok(
                "models",
                format!(
                    "YuNet and SFace in {}: SHA-256 verified, loaded on {} in {} ms",
                    dir.display(),
                    config.vision.runtime,
                    started.elapsed().as_millis()
                ),
            ),
            Some(engine),
        ),
        Err(e) => (
            Check::fail(
                "models",
                e.to_string(),
                "reinstall the package (apt install --reinstall facegate), or set \
                 vision.model_dir / vision.ort_library; on armv7 use vision.runtime = \"tract\"",
            ),
            None,
        ),
    }
}

/// Opens the camera on a thread of its own (a V4L2 handle stays on its thread; a hung
/// driver must not hang the doctor) and times up to ten frames.
fn camera(config: &Config, timeout: Duration) -> Check {
    const NAME: &str = "camera";
    let factory =
        match crate::camera::open(&config.camera, &config.vision.images, Arc::new(SystemClock)) {
            Ok(factory) => factory,
            Err(e) => return Check::fail(NAME, e.to_string(), camera_fix(config)),
        };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut source = factory();
        let started = Instant::now();
        for _ in 0..10 {
            let frame = source.next_frame();
            let failed = frame.is_err();
            if tx.send(frame).is_err() || failed || started.elapsed() > Duration::from_secs(3) {
                return;
            }
        }
    });
    let mut frames = Vec::new();
    while let Ok(frame) = rx.recv_timeout(timeout) {
        match frame {
            Ok(frame) => frames.push(frame),
            Err(e) if frames.is_empty() => {
                return Check::fail(NAME, e.to_string(), camera_fix(config));
            }
            Err(_) => break,
        }
    }
    let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
        return Check::fail(
            NAME,
            format!("no frame within {} s", timeout.as_secs()),
            camera_fix(config),
        );
    };
    let (width, height) = first.image.dimensions();
    let span_ms = last.captured_at_ms.saturating_sub(first.captured_at_ms);
    let fps = if span_ms > 0 {
        format!(
            "{:.1} frames/s",
            (frames.len() - 1) as f64 * 1000.0 / span_ms as f64
        )
    } else {
        "one frame".into()
    };
    let detail = format!("{width}x{height}, {fps}");
    let c = &config.camera;
    match c.kind {
        crate::camera::CameraKind::Replay => Check::warn(
            NAME,
            format!(
                "replay of {}: {detail}",
                c.replay_dir.as_deref().unwrap_or(Path::new("?")).display()
            ),
            "a replay is for demos and tests: set camera.kind = \"v4l2\" at a real door",
        ),
        crate::camera::CameraKind::V4l2 if (width, height) != (c.width, c.height) => Check::warn(
            NAME,
            format!(
                "{}: {detail}, not the configured {}x{}",
                c.device.display(),
                c.width,
                c.height
            ),
            "set camera.width and camera.height to a size the camera offers \
             (v4l2-ctl --list-formats-ext)",
        ),
        crate::camera::CameraKind::V4l2 => {
            Check::ok(NAME, format!("{}: {detail}", c.device.display()))
        }
    }
}

fn camera_fix(config: &Config) -> String {
    match config.camera.kind {
        crate::camera::CameraKind::V4l2 => format!(
            "check the cable and `v4l2-ctl --list-devices`; set camera.device (now {}); the \
             user needs the video group; stop the service first (one process per camera)",
            config.camera.device.display()
        ),
        crate::camera::CameraKind::Replay => "point camera.replay_dir at a folder of photos".into(),
    }
}

fn relay(config: &Config, pulse: bool) -> Check {
    const NAME: &str = "relay";
    if config.relay.kind == RelayKind::Simulated {
        return Check::warn(
            NAME,
            "simulated: no lock is driven",
            "at a real door set relay.kind = \"gpio\" and relay.pin (docs/install.md)",
        );
    }
    let gpio_fix = "add the user to the gpio group; check relay.pin and the other pins; stop \
                    the service first if it holds the pins";
    let detail = match crate::door::gpio::probe(&config.relay) {
        Ok(detail) => detail,
        Err(e) => return Check::fail(NAME, e.to_string(), gpio_fix),
    };
    if !pulse {
        return Check::ok(NAME, format!("{detail} (not pulsed; --pulse clicks it)"));
    }
    let unlock = Duration::from_millis(config.daemon.unlock_ms);
    let clock = std::sync::Arc::new(crate::clock::SystemClock);
    let pulsed = crate::door::open_hardware(&config.relay, unlock, clock)
        .and_then(|hardware| Door::new(hardware.relay))
        .and_then(|mut door| {
            door.unlock()?;
            std::thread::sleep(Duration::from_millis(500));
            door.lock()
        });
    match pulsed {
        Ok(()) => Check::ok(NAME, format!("{detail}; pulsed 0.5 s and locked again")),
        Err(e) => Check::fail(NAME, e.to_string(), gpio_fix),
    }
}

/// When this binary was built (seconds since the epoch), from build.rs.
fn build_epoch() -> u64 {
    env!("FACEGATE_BUILD_EPOCH").parse().unwrap_or(0)
}

/// A Pi has no real-time clock: until NTP answers it may boot in the past. A time before the
/// build is certainly wrong, and tokens would look not-yet-valid or long expired.
pub fn clock_check(now_secs: u64, built_secs: u64) -> Check {
    if now_secs + 60 < built_secs {
        Check::warn(
            "clock",
            format!(
                "the time is {} s before this binary was built",
                built_secs - now_secs
            ),
            "let the Pi reach an NTP server (timedatectl status; systemd-timesyncd), or fit \
             an RTC; token checks fail until the time is right",
        )
    } else {
        Check::ok("clock", "not earlier than the build")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::doctor::Verdict;

    #[test]
    fn a_clock_before_the_build_is_flagged() {
        let built = 1_790_000_000;
        assert_eq!(clock_check(built + 5, built).verdict, Verdict::Ok);
        assert_eq!(
            clock_check(built - 30, built).verdict,
            Verdict::Ok,
            "a minute's slack"
        );
        let behind = clock_check(86_400, built);
        assert_eq!(behind.verdict, Verdict::Warn);
        assert!(behind.fix.unwrap().contains("NTP"));
    }

    #[test]
    fn the_binary_knows_when_it_was_built() {
        assert!(build_epoch() > 1_700_000_000);
    }
}
