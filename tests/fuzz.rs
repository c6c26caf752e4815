//! Two fuzz targets, deterministic and bounded (SECURITY.md rule 14): mutants of real photos
//! through decode → detect → describe, and mutants of the shipped config through parse →
//! check. A fixed seed gives every run the same inputs in the same order; the time budget
//! (`FACEGATE_FUZZ_SECS` per target, default 3; CI runs more in `scripts/run-tests.sh`) only
//! decides how far into that sequence a run gets.
//!
//! A crash is a panic (caught and counted) or an abort (this process dies: the test fails); a
//! hang is an input slower than [`HANG`], and one still running after [`STUCK`] makes the
//! watchdog abort the run. The image target also watches peak memory, which
//! must stay within what `max_pixels` and `max_side` allow. Offending inputs are written to
//! `target/fuzz-failures/` to be replayed.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use facegate::config::Config;
use facegate::vision::{RuntimeKind, image_io};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEED: u64 = 0x000f_ace9_a7e5;
/// An input slower than this is a hang. The slowest honest input is a photo of `max_pixels`
/// (40 megapixels): about 9 s to decode and scale down in this debug build (the resize is
/// generic code compiled at opt-level 0), well under a second in release.
const HANG: Duration = Duration::from_secs(15);

/// An input still running after this is stuck: the watchdog saves it and aborts the run.
const STUCK: Duration = Duration::from_secs(60);

/// Watches the input being run from a thread of its own: one that never finishes cannot be
/// timed by the loop, so the watchdog reports it (and saves it for replay) and aborts.
struct Watchdog {
    current: Arc<Mutex<Option<Running>>>,
}

/// The input being run: its number, since when, its bytes.
type Running = (u64, Instant, Vec<u8>);

impl Watchdog {
    fn start(target: &'static str) -> Self {
        let current: Arc<Mutex<Option<Running>>> = Arc::default();
        let watched = current.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let guard = watched.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((n, since, bytes)) = guard.as_ref()
                    && since.elapsed() > STUCK
                {
                    let path = save(target, *n, bytes);
                    eprintln!(
                        "fuzz {target}: input {n} still running after {STUCK:?} (a hang): {}",
                        path.display()
                    );
                    std::process::abort();
                }
            }
        });
        Self { current }
    }

    fn running(&self, n: u64, bytes: &[u8]) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((n, Instant::now(), bytes.to_vec()));
    }

    fn done(&self) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

fn budget() -> Duration {
    let secs = std::env::var("FACEGATE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs.clamp(0.1, 600.0))
}

/// What a run found.
#[derive(Default)]
struct Figures {
    inputs: u64,
    accepted: u64,
    crashes: Vec<String>,
    hangs: Vec<String>,
    other: Vec<String>,
}

impl Figures {
    fn report(&self, target: &str, seconds: f64, extra: &str) {
        eprintln!(
            "fuzz {target}: {} inputs in {seconds:.1} s (seed {SEED:#x}), {} accepted, {} crashes, \
             {} hangs{extra}",
            self.inputs,
            self.accepted,
            self.crashes.len(),
            self.hangs.len()
        );
        let failures: Vec<_> = self
            .crashes
            .iter()
            .chain(&self.hangs)
            .chain(&self.other)
            .collect();
        assert!(failures.is_empty(), "fuzz {target} failed:\n{failures:#?}");
    }
}

/// Keeps an offending input for replay; its path.
fn save(target: &str, n: u64, bytes: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{target}-{SEED:x}-{n}"));
    let _ = std::fs::write(&path, bytes);
    path
}

/// Peak resident memory since the last reset, bytes; `None` where /proc cannot tell.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak to the current resident size (Linux `clear_refs` 5).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

const INTERESTING_16: [u16; 12] = [0, 1, 2, 7, 8, 16, 250, 255, 256, 0x7fff, 0x8000, 0xffff];
const INTERESTING_32: [u32; 12] = [
    0,
    1,
    2,
    8,
    250,
    4096,
    40_000,
    1_000_000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
];

fn pick16(rng: &mut StdRng) -> u16 {
    if rng.gen_bool(0.7) {
        INTERESTING_16[rng.gen_range(0..INTERESTING_16.len())]
    } else {
        rng.r#gen()
    }
}

/// One mutant of `seed`: 1–3 mutations, each a bit flip, an interesting byte, a rewritten
/// image size (JPEG SOF, or PNG IHDR with its CRC fixed), a truncation, or a chunk
/// duplicated, removed or overwritten.
fn mutate_image(seed: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..rng.gen_range(1..=3) {
        if bytes.is_empty() {
            break;
        }
        let len = bytes.len();
        match rng.gen_range(0..8) {
            0 => {
                let at = rng.gen_range(0..len);
                bytes[at] ^= 1 << rng.gen_range(0..8);
            }
            1 => {
                let at = rng.gen_range(0..len);
                bytes[at] = [0x00, 0xff, 0x7f, 0x80, 0x01][rng.gen_range(0..5)];
            }
            2 | 3 => {
                if common::sof_offset(&bytes).is_some() {
                    let (w, h) = (pick16(rng), pick16(rng));
                    bytes = common::with_jpeg_size(&bytes, w, h).unwrap_or(bytes);
                } else if bytes.starts_with(b"\x89PNG") && len >= 33 {
                    let field = 16 + 4 * rng.gen_range(0..2);
                    let value = if rng.gen_bool(0.7) {
                        INTERESTING_32[rng.gen_range(0..INTERESTING_32.len())]
                    } else {
                        rng.gen_range(0..100_000)
                    };
                    bytes[field..field + 4].copy_from_slice(&value.to_be_bytes());
                    let crc = crc32(&bytes[12..29]);
                    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
                }
            }
            4 => bytes.truncate(rng.gen_range(0..len)),
            5 => {
                let from = rng.gen_range(0..len);
                let to = (from + rng.gen_range(1..512)).min(len);
                let chunk = bytes[from..to].to_vec();
                let at = rng.gen_range(0..len);
                bytes.splice(at..at, chunk);
            }
            6 => {
                let from = rng.gen_range(0..len);
                let to = (from + rng.gen_range(1..512)).min(len);
                bytes.drain(from..to);
            }
            _ => {
                let at = rng.gen_range(0..len);
                let n = rng.gen_range(1..16).min(len - at);
                rng.fill(&mut bytes[at..at + n]);
            }
        }
    }
    bytes
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Real photos (colour JPEG, grey PNG from two sources), photos without a face, and a few
/// synthetic PNGs.
fn image_seeds(faces: &std::path::Path) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = common::people(faces, 8)
        .iter()
        .map(|p| std::fs::read(common::photo(faces, p, 1)).unwrap())
        .collect();
    let csv = std::fs::read_to_string(faces.join("images.csv")).unwrap();
    for source in ["orl", "yale"] {
        let file = csv
            .lines()
            .find(|l| l.split(',').nth(2) == Some(source))
            .and_then(|l| l.split(',').next());
        if let Some(file) = file {
            seeds.push(std::fs::read(faces.join(file)).unwrap());
        }
    }
    for file in ["nonface/skimage_brick.png", "nonface/sklearn_china.jpg"] {
        seeds.push(std::fs::read(faces.join(file)).unwrap());
    }
    seeds.extend([common::png(1, 1), common::png(300, 40), common::png(64, 64)]);
    seeds
}

#[test]
fn fuzz_image_decode_then_detect_never_crashes_hangs_or_overspends_memory() {
    let Some(faces) = common::faces_dir() else {
        return;
    };
    let Some(mut engine) = common::engine(RuntimeKind::Ort) else {
        return;
    };
    let limits = engine.config().images;
    let max_side = engine.config().detector.max_side as u64;
    let seeds = image_seeds(&faces);
    // Decoding holds the RGB image and at most a few copies of it; detection works on at most
    // max_side² pixels (the padded retry included) and a float tensor of them.
    let allowed = 4 * 3 * limits.max_pixels + 64 * max_side * max_side + (64 << 20);
    let measuring = reset_peak();
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut figures = Figures::default();
    let (mut with_faces, mut worst, mut slowest) = (0u64, 0u64, Duration::ZERO);
    let watchdog = Watchdog::start("image");
    let started = Instant::now();
    while started.elapsed() < budget() {
        let seed = &seeds[rng.gen_range(0..seeds.len())];
        let mutant = mutate_image(seed, &mut rng);
        let n = figures.inputs;
        figures.inputs += 1;
        let before = if measuring && reset_peak() {
            rss()
        } else {
            None
        };
        watchdog.running(n, &mutant);
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let image = image_io::decode(&mutant, &limits).ok()?;
            let faces = engine.detect(&image).ok()?;
            if let Some(face) = faces.first() {
                let _ = engine.describe(&image, face);
            }
            Some(faces.len())
        }));
        let took = t.elapsed();
        slowest = slowest.max(took);
        watchdog.done();
        match outcome {
            Err(_) => figures
                .crashes
                .push(format!("panic: {}", save("image", n, &mutant).display())),
            Ok(Some(found)) => {
                figures.accepted += 1;
                with_faces += (found > 0) as u64;
            }
            Ok(None) => {}
        }
        if took > HANG {
            figures
                .hangs
                .push(format!("{took:?}: {}", save("image", n, &mutant).display()));
        }
        if let (Some(before), Some(peak)) = (before, peak_rss()) {
            let spent = peak.saturating_sub(before);
            worst = worst.max(spent);
            if spent > allowed {
                figures.other.push(format!(
                    "{} MB over a bound of {} MB: {}",
                    spent >> 20,
                    allowed >> 20,
                    save("image", n, &mutant).display()
                ));
            }
        }
    }
    let memory = if measuring {
        format!(
            ", peak +{} MB per input (bound {} MB)",
            worst >> 20,
            allowed >> 20
        )
    } else {
        ", memory not measured (no /proc/self/clear_refs)".to_string()
    };
    let extra = format!(
        " ({with_faces} with a face), slowest input {:.1} s{memory}",
        slowest.as_secs_f64()
    );
    figures.report(
        "image decode → detect",
        started.elapsed().as_secs_f64(),
        &extra,
    );
}

/// Values that have broken configs: NaN, infinities, zero, negatives, wrap-arounds, huge.
const HOSTILE_VALUES: [&str; 20] = [
    "nan",
    "inf",
    "-inf",
    "+nan",
    "0",
    "-1",
    "0.0",
    "-0.0",
    "1e30",
    "1e-30",
    "1e39",
    "18446744073709551615",
    "18446744073709552",
    "9223372036854775807",
    "4294967296",
    "\"\"",
    "\"0.0.0.0:9464\"",
    "[\"\"]",
    "true",
    "\"\\u212aim\"",
];

/// One mutant of the config `text`: a value replaced by a hostile one, a line dropped or
/// doubled, or a few bytes changed.
fn mutate_config(text: &str, rng: &mut StdRng) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for _ in 0..rng.gen_range(1..=3) {
        let at = rng.gen_range(0..lines.len());
        match rng.gen_range(0..6) {
            0..=2 => {
                if let Some((key, _)) = lines[at].split_once(" = ") {
                    let value = HOSTILE_VALUES[rng.gen_range(0..HOSTILE_VALUES.len())];
                    let key = key.trim_start_matches("# ").to_string();
                    lines[at] = format!("{key} = {value}");
                }
            }
            3 => {
                lines.remove(at);
            }
            4 => {
                let line = lines[at].clone();
                lines.insert(at, line);
            }
            _ => {
                let mut bytes = lines[at].clone().into_bytes();
                if !bytes.is_empty() {
                    let i = rng.gen_range(0..bytes.len());
                    bytes[i] = rng.gen_range(0x20..0x7f);
                }
                lines[at] = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
        if lines.is_empty() {
            break;
        }
    }
    lines.join("\n")
}

/// What an accepted config must never be: the properties `check-config` promises.
fn unsafe_in(config: &Config) -> Vec<String> {
    let mut found = Vec::new();
    fn floats(value: &toml::Value, out: &mut Vec<f64>) {
        match value {
            toml::Value::Float(f) => out.push(*f),
            toml::Value::Table(t) => t.values().for_each(|v| floats(v, out)),
            toml::Value::Array(a) => a.iter().for_each(|v| floats(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    floats(&toml::Value::try_from(config).unwrap(), &mut all);
    if all.iter().any(|f| !f.is_finite()) {
        found.push("a NaN or infinity".into());
    }
    let (l, q, d) = (&config.liveness, &config.vision.quality, &config.daemon);
    let checks = [
        (
            l.min_jitter > 0.0 && l.min_yaw_spread > 0.0,
            "liveness switched off",
        ),
        (
            d.rearm_ms >= 500 && d.rearm_ms <= 60_000,
            "rearm_ms out of range",
        ),
        (
            config.offline.grace_secs.checked_mul(1000).is_some()
                && config.offline.grace_secs <= 604_800,
            "grace_secs unbounded",
        ),
        (
            q.min_face_px >= 40.0 && q.max_yaw <= 0.8 && q.max_roll_deg <= 45.0,
            "quality gate open",
        ),
        (
            config.vision.images.max_pixels <= 100_000_000
                && config.vision.images.max_bytes <= 64 << 20,
            "image limits unbounded",
        ),
        (
            config.doors.values().all(|p| {
                !p.allowed_groups.is_empty()
                    && p.allowed_groups.iter().all(|g| !g.trim().is_empty())
            }),
            "a blank group",
        ),
        (
            config
                .monitoring
                .listen
                .is_none_or(|a| a.ip().is_loopback() || config.monitoring.allow_remote),
            "a remote listener nobody asked for",
        ),
    ];
    found.extend(
        checks
            .iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, what)| what.to_string()),
    );
    // What `run` and `auth` compute from the config must not panic either.
    let _ = std::time::Duration::from_millis(d.unlock_ms + 1_000);
    let _ = (
        config.backend.aws.connect_timeout(),
        config.backend.aws.operation_timeout(),
    );
    found
}

#[test]
fn fuzz_config_parse_then_check_never_crashes_or_accepts_an_unsafe_config() {
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/facegate.toml"),
    )
    .unwrap();
    let aws = shipped
        .replace("kind = \"embedded\"", "kind = \"aws\"")
        .replace(
            "user_pool_id = \"\"\nclient_id = \"\"",
            "user_pool_id = \"eu-west-1_abc\"\nclient_id = \"c\"",
        )
        .replace(
            "signin_bucket = \"\"\nsignup_bucket = \"\"",
            "signin_bucket = \"i\"\nsignup_bucket = \"u\"",
        );
    assert!(
        Config::from_toml(&shipped).is_ok() && Config::from_toml(&aws).is_ok(),
        "the seeds are valid"
    );
    let seeds = [shipped, aws];
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut figures = Figures::default();
    let watchdog = Watchdog::start("config");
    let started = Instant::now();
    while started.elapsed() < budget() {
        let mutant = mutate_config(&seeds[rng.gen_range(0..seeds.len())], &mut rng);
        let n = figures.inputs;
        figures.inputs += 1;
        watchdog.running(n, mutant.as_bytes());
        let t = Instant::now();
        let outcome = catch_unwind(|| match Config::from_toml(&mutant) {
            Ok(config) => Some(unsafe_in(&config)),
            Err(_) => None,
        });
        match outcome {
            Err(_) => figures.crashes.push(format!(
                "panic: {}",
                save("config", n, mutant.as_bytes()).display()
            )),
            Ok(Some(found)) => {
                figures.accepted += 1;
                if !found.is_empty() {
                    figures.other.push(format!(
                        "accepted with {found:?}: {}",
                        save("config", n, mutant.as_bytes()).display()
                    ));
                }
            }
            Ok(None) => {}
        }
        watchdog.done();
        if t.elapsed() > HANG {
            figures
                .hangs
                .push(save("config", n, mutant.as_bytes()).display().to_string());
        }
    }
    figures.report("config parse → check", started.elapsed().as_secs_f64(), "");
}

#[test]
fn the_mutators_are_deterministic() {
    let seed = common::png(8, 8);
    let run = || {
        let mut rng = StdRng::seed_from_u64(SEED);
        (0..50)
            .map(|_| mutate_image(&seed, &mut rng))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}
