//! `facegate detect IMAGE`: every face with its box, score, landmarks and quality verdict.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{Failure, GlobalArgs, load_engine, print_json};
use crate::vision::{Face, QualityVerdict};

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// A JPEG or PNG photo
    pub image: PathBuf,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct DetectedFace {
    #[serde(flatten)]
    face: Face,
    quality: QualityVerdict,
}

#[derive(Serialize)]
struct DetectReport {
    image: PathBuf,
    width: u32,
    height: u32,
    faces: Vec<DetectedFace>,
}

pub fn run(global: &GlobalArgs, args: DetectArgs) -> Result<u8, Failure> {
    let mut engine = load_engine(global)?;
    let image = engine.load_image(&args.image)?;
    let faces = engine.detect(&image)?;
    let faces = faces
        .into_iter()
        .map(|face| {
            let described = engine.describe(&image, &face)?;
            Ok(DetectedFace {
                face,
                quality: described.quality,
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let report = DetectReport {
        image: args.image,
        width: image.width(),
        height: image.height(),
        faces,
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(0)
}

fn print_text(report: &DetectReport) {
    println!(
        "{}: {}x{}, {} face(s)",
        report.image.display(),
        report.width,
        report.height,
        report.faces.len()
    );
    for (i, f) in report.faces.iter().enumerate() {
        let b = &f.face.bbox;
        let verdict = if f.quality.passed {
            "quality ok".to_string()
        } else {
            format!("quality: {}", f.quality.reasons.join("; "))
        };
        println!(
            "  #{} box {:.0},{:.0} {:.0}x{:.0}  score {:.3}  {}",
            i + 1,
            b.x,
            b.y,
            b.width,
            b.height,
            f.face.score,
            verdict
        );
    }
}
