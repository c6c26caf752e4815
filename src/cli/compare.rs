//! `facegate compare A B`: are the largest faces of two photos the same person?
//! Exit 0 whether or not they match; an unreadable photo or one with no face is an error.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::{Failure, GlobalArgs, load_engine, print_json};
use crate::vision::{Embedding, FaceEngine};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// First photo
    pub image_a: PathBuf,
    /// Second photo
    pub image_b: PathBuf,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Comparison {
    similarity: f32,
    threshold: f32,
    #[serde(rename = "match")]
    is_match: bool,
}

pub fn run(global: &GlobalArgs, args: CompareArgs) -> Result<u8, Failure> {
    let mut engine = load_engine(global)?;
    let a = largest_face(&mut engine, &args.image_a)?;
    let b = largest_face(&mut engine, &args.image_b)?;
    let similarity = a.cosine(&b);
    let threshold = engine.match_threshold();
    let result = Comparison {
        similarity,
        threshold,
        is_match: similarity >= threshold,
    };
    if args.json {
        print_json(&result)?;
    } else {
        println!(
            "similarity {:.4} (threshold {:.3}): {}",
            result.similarity,
            result.threshold,
            if result.is_match {
                "same person"
            } else {
                "different people"
            }
        );
    }
    Ok(0)
}

fn largest_face(engine: &mut FaceEngine, path: &Path) -> Result<Embedding, Failure> {
    let described = engine
        .load_image(path)
        .and_then(|image| engine.largest_face(&image))
        .with_context(|| path.display().to_string())?;
    Ok(described.embedding)
}
