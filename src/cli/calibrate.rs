//! `facegate calibrate --faces DIR… --out FILE`: the table of the model's impostor scores that
//! the decision rule reads its thresholds from (`data/calibration/sface-int8bq.json` ships one).
//! Every pair of photos of two different people is an impostor comparison.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::photo_set::{Photo, describe_all, labelled_images};
use super::{Failure, GlobalArgs, load_engine};
use crate::matching::calibrate;
use crate::vision::models;

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// A folder with one sub-folder of photos per person (repeat for more; people must not
    /// appear in two folders)
    #[arg(long = "faces", value_name = "DIR", required = true)]
    pub faces: Vec<PathBuf>,
    /// Where to write the table (JSON)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Keep embeddings in this file (JSON lines) and reuse them on the next run
    #[arg(long, value_name = "PATH")]
    pub cache: Option<PathBuf>,
}

pub fn run(global: &GlobalArgs, args: CalibrateArgs) -> Result<u8, Failure> {
    let mut photos: Vec<Photo> = Vec::new();
    for (i, dir) in args.faces.iter().enumerate() {
        // Folders are separate people: keep their labels apart.
        photos.extend(labelled_images(dir)?.into_iter().map(|mut p| {
            p.person = format!("{i}:{}", p.person);
            p
        }));
    }
    let mut engine = load_engine(global)?;
    let described = describe_all(&mut engine, photos, args.cache.as_deref())?;
    let mut faces: Vec<(&str, crate::vision::Embedding)> = described
        .photos
        .iter()
        .filter_map(|(p, d)| d.embedding().map(|e| (p.person.as_str(), e)))
        .collect();
    faces.sort_by(|a, b| a.0.cmp(b.0));
    let people = {
        let mut p: Vec<&str> = faces.iter().map(|f| f.0).collect();
        p.dedup();
        p.len()
    };
    eprintln!(
        "calibrate: {} faces of {people} people; scoring every pair of different people",
        faces.len()
    );
    let mut impostor = Vec::with_capacity(faces.len() * faces.len() / 2);
    for (i, (pi, ei)) in faces.iter().enumerate() {
        impostor.extend(
            faces[i + 1..]
                .iter()
                .filter(|(pj, _)| pj != pi)
                .map(|(_, ej)| ei.cosine(ej)),
        );
    }
    impostor.sort_by(f32::total_cmp);
    let folders: Vec<String> = args.faces.iter().map(|d| d.display().to_string()).collect();
    let table = calibrate::table(
        &impostor,
        format!(
            "{} (SHA-256 {}), runtime {}",
            models::SFACE.file_name,
            models::SFACE.sha256,
            engine.config().runtime
        ),
        format!(
            "{} faces of {people} people in {}; every pair of two different people",
            faces.len(),
            folders.join(", ")
        ),
        format!(
            "facegate calibrate {} --out {}",
            folders
                .iter()
                .map(|f| format!("--faces {f}"))
                .collect::<Vec<_>>()
                .join(" "),
            args.out.display()
        ),
    )
    .map_err(anyhow::Error::from)?;
    let text = serde_json::to_string_pretty(&table).map_err(anyhow::Error::from)?;
    std::fs::write(&args.out, text + "\n")
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "{} impostor comparisons; threshold at a rate of 1e-3: {:.3}, 1e-5: {:.3}, 1e-7: {:.3} \
         (counted down to {:.1e}, fitted below); written to {}",
        table.impostor_pairs,
        table.threshold_for(1e-3),
        table.threshold_for(1e-5),
        table.threshold_for(1e-7),
        table.fitted_below,
        args.out.display()
    );
    Ok(0)
}
