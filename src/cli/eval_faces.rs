//! `facegate eval-faces DIR`: verification accuracy over every same-person and different-person
//! pair of a labelled folder, and the time per image of detect + align + embed.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::photo_set::{Described, describe_all, labelled_images};
use super::{Failure, GlobalArgs, load_engine, print_json};
use crate::vision::eval::{PairScores, Report, median};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Folder with one sub-folder of photos per person
    pub dir: PathBuf,
    /// Keep embeddings in this file (JSON lines) and reuse them on the next run
    #[arg(long, value_name = "PATH")]
    pub cache: Option<PathBuf>,
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

pub fn run(global: &GlobalArgs, args: EvalArgs) -> Result<u8, Failure> {
    let images = labelled_images(&args.dir)?;
    let count = images.len();
    let mut engine = load_engine(global)?;
    let described = describe_all(&mut engine, images, args.cache.as_deref())?;
    let (mut embedded, mut missed, mut unreadable) = (Vec::new(), Vec::new(), Vec::new());
    for (photo, outcome) in &described.photos {
        match outcome {
            Described::Unreadable(e) => unreadable.push(format!("{}: {e}", photo.path.display())),
            Described::NoFace => missed.push(photo.path.clone()),
            face => embedded.extend(face.embedding().map(|e| (photo.person.clone(), e))),
        }
    }
    let times_ms = described.times_ms;
    let scores = PairScores::from_labelled(&embedded);
    let output = EvalOutput {
        runtime: engine.config().runtime.to_string(),
        threads: engine.config().threads,
        images: count,
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
