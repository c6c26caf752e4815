//! `facegate eval-faces DIR`: verification accuracy over every same-person and different-person
//! pair of a labelled folder, and the time per image of detect + align + embed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::{Failure, GlobalArgs, load_engine, print_json};
use crate::vision::eval::{PairScores, Report, median};
use crate::vision::{Embedding, VisionError};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Folder with one sub-folder of photos per person
    pub dir: PathBuf,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct EvalOutput {
    runtime: String,
    threads: usize,
    images: usize,
    detected: usize,
    missed: Vec<PathBuf>,
    unreadable: Vec<String>,
    #[serde(flatten)]
    report: Report,
    median_ms_per_image: Option<f64>,
    mean_ms_per_image: Option<f64>,
}

/// Photos under `dir`, one sub-folder per person, as (person, path), sorted.
pub fn labelled_images(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut people: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    people.sort();
    let mut images = Vec::new();
    for person in people {
        let label = person
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&person)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_photo(p))
            .collect();
        files.sort();
        images.extend(files.into_iter().map(|f| (label.clone(), f)));
    }
    if images.is_empty() {
        bail!(
            "{} holds no person folders with JPEG or PNG photos (expected DIR/PERSON/PHOTO.jpg)",
            dir.display()
        );
    }
    Ok(images)
}

fn is_photo(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    path.is_file() && matches!(ext.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")
}

/// A progress bar on a terminal, nothing otherwise.
pub fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} ({eta} left)")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

pub fn run(global: &GlobalArgs, args: EvalArgs) -> Result<u8, Failure> {
    let images = labelled_images(&args.dir)?;
    let mut engine = load_engine(global)?;
    let bar = progress(images.len(), "embedding");
    let mut embedded: Vec<(String, Embedding)> = Vec::with_capacity(images.len());
    let (mut missed, mut unreadable, mut times_ms) = (Vec::new(), Vec::new(), Vec::new());
    for (person, path) in &images {
        bar.inc(1);
        let image = match engine.load_image(path) {
            Ok(image) => image,
            Err(e) => {
                unreadable.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let started = Instant::now();
        let outcome = engine.largest_face(&image);
        times_ms.push(started.elapsed().as_secs_f64() * 1e3);
        match outcome {
            Ok(face) => embedded.push((person.clone(), face.embedding)),
            Err(VisionError::NoFace) => missed.push(path.clone()),
            Err(e) => {
                return Err(anyhow::Error::from(e)
                    .context(path.display().to_string())
                    .into());
            }
        }
    }
    bar.finish_and_clear();
    let scores = PairScores::from_labelled(&embedded);
    let output = EvalOutput {
        runtime: engine.config().runtime.to_string(),
        threads: engine.config().threads,
        images: images.len(),
        detected: embedded.len(),
        missed,
        unreadable,
        report: Report::new(&scores, engine.match_threshold()),
        median_ms_per_image: median(&times_ms),
        mean_ms_per_image: (!times_ms.is_empty())
            .then(|| times_ms.iter().sum::<f64>() / times_ms.len() as f64),
    };
    if args.json {
        print_json(&output)?;
    } else {
        print_text(&output);
    }
    Ok(0)
}

fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{:.3} %", v * 100.0))
        .unwrap_or_else(|| "n/a".into())
}

fn print_text(o: &EvalOutput) {
    let r = &o.report;
    println!("runtime            {} ({} thread(s))", o.runtime, o.threads);
    println!("images             {}", o.images);
    println!(
        "detected           {} ({} without a face, {} unreadable)",
        o.detected,
        o.missed.len(),
        o.unreadable.len()
    );
    println!("genuine pairs      {}", r.genuine_pairs);
    println!("impostor pairs     {}", r.impostor_pairs);
    println!("FAR at {:.3}        {}", r.threshold, percent(Some(r.far)));
    println!("FRR at {:.3}        {}", r.threshold, percent(Some(r.frr)));
    println!("TAR at FAR 1e-3    {}", percent(r.tar_at_far_1e3));
    println!("TAR at FAR 1e-4    {}", percent(r.tar_at_far_1e4));
    println!(
        "EER                {} (at {})",
        percent(r.eer),
        r.eer_threshold
            .map(|t| format!("{t:.3}"))
            .unwrap_or_else(|| "n/a".into())
    );
    if let Some(ms) = o.median_ms_per_image {
        println!("median ms/image    {ms:.1} (detect + align + embed, decode excluded)");
    }
    for line in &o.unreadable {
        println!("unreadable: {line}");
    }
}
