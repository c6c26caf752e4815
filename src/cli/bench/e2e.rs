//! `facegate bench e2e`: the daemon as a person at the door meets it.
//!
//! - Face to relay: an enrolled person walks up again and again (replay camera, embedded
//!   backend, simulated relay, in this process); for each attempt, the wall time from handing
//!   the frame that completes the live track to the daemon until the relay is open — detection
//!   and embedding of that frame, liveness, the whole challenge, token checks, the audit write
//!   and the relay — against one detect + align + embed of the same frame timed right after it,
//!   so the ratio says how much more than one inference an attempt costs.
//! - Start to READY and peak memory: `facegate run` started as systemd would (a notify socket),
//!   timed until it says READY=1, fed a short recording of the same person so one sign-in
//!   runs, then its peak resident memory (VmHWM) read from /proc before it is stopped.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Args;
use serde::Serialize;

use super::vision::ms;
use crate::backend::embedded::EmbeddedBackend;
use crate::backend::fault::Outage;
use crate::camera::FrameSource;
use crate::camera::replay::{Motion, ReplayCamera, Scene};
use crate::cli::demo::{cast, demo_settings, wait};
use crate::cli::{Failure, GlobalArgs, load_config, print_json, runtime};
use crate::clock::OffsetClock;
use crate::config::Config;
use crate::daemon::embedded_door;
use crate::door::simulated::SimulatedRelay;
use crate::vision::eval::median;

#[derive(Debug, Args)]
pub struct E2eBenchArgs {
    /// Folder of photos, one sub-folder per person [default: ../shared/faces/dev]
    #[arg(long, value_name = "DIR")]
    pub faces: Option<PathBuf>,
    /// Sign-in attempts to time (at least 50 for a meaningful p99)
    #[arg(long, default_value_t = 60)]
    pub attempts: usize,
    /// How many times to start `facegate run` for READY time and peak memory
    #[arg(long, default_value_t = 5)]
    pub starts: usize,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct E2eBench {
    cores: usize,
    runtime: String,
    attempts: usize,
    granted: usize,
    face_to_relay_median_ms: Option<f64>,
    face_to_relay_p99_ms: Option<f64>,
    /// One detect + align + embed of the same frames, timed in the same run.
    one_inference_median_ms: Option<f64>,
    /// face_to_relay_median_ms / one_inference_median_ms.
    face_to_relay_ratio: Option<f64>,
    starts: usize,
    ready_median_ms: Option<f64>,
    peak_rss_mb_max: Option<f64>,
    peak_rss_mb_median: Option<f64>,
}

pub fn run(global: &GlobalArgs, args: E2eBenchArgs) -> Result<u8, Failure> {
    let config = load_config(global)?;
    let faces = args
        .faces
        .clone()
        .unwrap_or_else(|| PathBuf::from("../shared/faces/dev"));
    let work = tempfile::Builder::new()
        .prefix("facegate-bench-")
        .tempdir()
        .map_err(anyhow::Error::from)?;
    let timed = runtime()?.block_on(time_attempts(&config, &faces, work.path(), args.attempts))?;
    let mut ready = Vec::new();
    let mut peaks = Vec::new();
    for i in 0..args.starts {
        eprint!("\rstarting facegate run ({}/{})", i + 1, args.starts);
        let (ready_ms, peak_mb) = time_start(&config, work.path(), &timed.recording)?;
        ready.push(ready_ms);
        peaks.extend(peak_mb);
    }
    eprintln!();
    let report = E2eBench {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        runtime: config.vision.runtime.to_string(),
        attempts: args.attempts,
        granted: timed.granted,
        face_to_relay_median_ms: median(&timed.latencies),
        face_to_relay_p99_ms: percentile(&timed.latencies, 0.99),
        one_inference_median_ms: median(&timed.inferences),
        face_to_relay_ratio: median(&timed.latencies)
            .zip(median(&timed.inferences))
            .map(|(a, b)| a / b),
        starts: args.starts,
        ready_median_ms: median(&ready),
        peak_rss_mb_max: peaks.iter().copied().reduce(f64::max),
        peak_rss_mb_median: median(&peaks),
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(0)
}

/// What the attempts measured.
struct Timed {
    /// Face to relay of each granted attempt, ms.
    latencies: Vec<f64>,
    /// One detect + align + embed of each attempt's last frame, ms.
    inferences: Vec<f64>,
    granted: usize,
    /// A short recording of the person, for `facegate run`.
    recording: PathBuf,
}

/// Times `attempts` sign-ins of one enrolled person.
async fn time_attempts(
    config: &Config,
    faces: &Path,
    work: &Path,
    attempts: usize,
) -> anyhow::Result<Timed> {
    let clock = OffsetClock::default();
    let engine = Arc::new(std::sync::Mutex::new(crate::vision::FaceEngine::load(
        &config.vision,
    )?));
    let data = work.join("data");
    let backend = Arc::new(EmbeddedBackend::open(
        &data,
        engine.clone(),
        &config.backend.embedded,
        config.matching.rule(),
        Arc::new(clock.clone()),
    )?);
    let cast = cast(&backend, faces).await?;
    let person = cast.enrolled[0].walks_up.clone();
    let mut daemon = embedded_door(
        &backend,
        &data,
        Box::new(SimulatedRelay::new(None)),
        Arc::new(clock.clone()),
        demo_settings(config)?,
        &Outage::default(),
    )?;
    let frames_per_walk = config.liveness.min_frames + 3;
    let scene = Scene {
        image: Some(person),
        frames: frames_per_walk,
        motion: Motion::Live,
    };
    let recording = work.join("recording");
    save_recording(&scene, &recording, &clock)?;

    let (mut latencies, mut inferences, mut granted) = (Vec::new(), Vec::new(), 0);
    let bar = crate::cli::photo_set::progress(attempts, "timing sign-ins");
    for _ in 0..attempts {
        let mut camera =
            ReplayCamera::new(vec![scene.clone()], Duration::ZERO, Arc::new(clock.clone()));
        while let Ok(frame) = camera.next_frame() {
            clock.jump_ms(100);
            let image = frame.image.clone();
            let started = Instant::now();
            if let Some(attempt) = daemon.on_frame(frame).await? {
                if attempt.granted() {
                    latencies.push(ms(started));
                    granted += 1;
                    inferences.push(one_inference(&engine, &image)?);
                }
                break;
            }
        }
        bar.inc(1);
        // The door relocks and rearms before the next person.
        wait(
            &mut daemon,
            &clock,
            config.daemon.unlock_ms + config.daemon.rearm_ms + 200,
        )
        .await?;
    }
    bar.finish_and_clear();
    if latencies.is_empty() {
        return Err(anyhow!("no attempt was granted: nothing to time"));
    }
    Ok(Timed {
        latencies,
        inferences,
        granted,
        recording,
    })
}

/// One detect + align + embed of `image`, ms.
fn one_inference(
    engine: &std::sync::Mutex<crate::vision::FaceEngine>,
    image: &image::RgbImage,
) -> anyhow::Result<f64> {
    let mut engine = engine
        .lock()
        .map_err(|_| anyhow!("the engine's lock is poisoned"))?;
    let started = Instant::now();
    let faces = engine.detect(image)?;
    let face = faces
        .first()
        .ok_or_else(|| anyhow!("no face in the timed frame"))?;
    let aligned = engine.align(image, face);
    engine.embed_aligned(&aligned)?;
    Ok(ms(started))
}

/// Writes the frames of `scene` as PNG files, for `facegate run`'s replay camera.
fn save_recording(scene: &Scene, dir: &Path, clock: &OffsetClock) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut camera =
        ReplayCamera::new(vec![scene.clone()], Duration::ZERO, Arc::new(clock.clone()));
    while let Ok(frame) = camera.next_frame() {
        let path = dir.join(format!("{:04}.png", frame.sequence));
        frame
            .image
            .save(&path)
            .with_context(|| path.display().to_string())?;
    }
    Ok(())
}

/// The allocator setting systemd/facegate.service gives the daemon (see the unit).
const MALLOC_ENV: (&str, &str) = ("MALLOC_MMAP_THRESHOLD_", "131072");

/// Starts `facegate run` on the enrolled data, in the environment the systemd unit sets; returns ms to READY=1 and its peak RSS in MB.
fn time_start(
    config: &Config,
    work: &Path,
    recording: &Path,
) -> anyhow::Result<(f64, Option<f64>)> {
    let mut child_config = config.clone();
    child_config.data_dir = work.join("data");
    child_config.camera.kind = crate::camera::CameraKind::Replay;
    child_config.camera.replay_dir = Some(recording.to_path_buf());
    child_config.relay = crate::door::DoorIoConfig::default();
    let config_path = work.join("run.toml");
    std::fs::write(&config_path, toml::to_string(&child_config)?)?;
    let socket_path = work.join("notify.sock");
    let _ = std::fs::remove_file(&socket_path);
    let socket = UnixDatagram::bind(&socket_path)?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;

    let started = Instant::now();
    let child = Command::new(std::env::current_exe()?)
        .arg("--config")
        .arg(&config_path)
        .arg("run")
        .env("NOTIFY_SOCKET", &socket_path)
        .env(MALLOC_ENV.0, MALLOC_ENV.1)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting facegate run")?;
    let mut child = StopOnDrop(child);
    let mut buf = [0u8; 1024];
    let ready_ms = loop {
        let said = socket
            .recv(&mut buf)
            .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned());
        if said.is_ok_and(|text| text.lines().any(|l| l == "READY=1")) {
            break ms(started);
        }
        if let Some(status) = child.0.try_wait()? {
            return Err(anyhow!("facegate run exited with {status} before READY"));
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(anyhow!("facegate run was not READY within 60 s"));
        }
    };
    // Let it play the recording (one sign-in), then read its high-water mark.
    let frames = std::fs::read_dir(recording)?.count() as u64;
    std::thread::sleep(Duration::from_millis(
        frames * 1000 / u64::from(config.camera.fps) + 1500,
    ));
    let peak = peak_rss_mb(child.0.id());
    Ok((ready_ms, peak))
}

/// Stops the child with SIGTERM (and waits) however the measurement ends.
struct StopOnDrop(Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// VmHWM of a process, in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The value at fraction `q` of the sorted values (nearest rank).
fn percentile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

fn print_text(r: &E2eBench) {
    let f = |v: Option<f64>, unit: &str| v.map_or("n/a".into(), |v| format!("{v:.0} {unit}"));
    println!(
        "machine: {} core(s); runtime {}; embedded backend, replay camera, simulated relay",
        r.cores, r.runtime
    );
    println!(
        "face to relay   median {}   p99 {}   ({} of {} attempts granted)",
        f(r.face_to_relay_median_ms, "ms"),
        f(r.face_to_relay_p99_ms, "ms"),
        r.granted,
        r.attempts
    );
    println!(
        "one inference   median {}   (detect + align + embed of the same frames); face to \
         relay is {} of it",
        f(r.one_inference_median_ms, "ms"),
        r.face_to_relay_ratio
            .map_or("n/a".into(), |x| format!("{x:.2}x"))
    );
    println!(
        "start to READY  median {}   (over {} starts)",
        f(r.ready_median_ms, "ms"),
        r.starts
    );
    println!(
        "peak RSS        max {}   median {}   (facegate run, models loaded, one sign-in)",
        f(r.peak_rss_mb_max, "MB"),
        f(r.peak_rss_mb_median, "MB")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_is_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.99), Some(99.0));
        assert_eq!(percentile(&values, 0.5), Some(50.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.99), None);
    }
}
