//! Labelled photo folders for the accuracy commands (`eval-faces`, `eval-identification`,
//! `calibrate`): one sub-folder per person, or a flat folder of one photo per person
//! (strangers), embedded once each, with an optional cache so repeated runs skip inference.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::backend::embedded::enrollment_refusal;
use crate::vision::{Embedding, FaceEngine};

/// One photo and the person it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub person: String,
    pub path: PathBuf,
}

/// Photos under `dir`, one sub-folder per person, sorted.
pub fn labelled_images(dir: &Path) -> anyhow::Result<Vec<Photo>> {
    let mut people = sub_folders(dir)?;
    people.sort();
    let mut images = Vec::new();
    for person in people {
        let label = file_name(&person);
        let mut files = photos_in(&person)?;
        files.sort();
        images.extend(files.into_iter().map(|path| Photo {
            person: label.clone(),
            path,
        }));
    }
    if images.is_empty() {
        bail!(
            "{} holds no person folders with JPEG or PNG photos (expected DIR/PERSON/PHOTO.jpg)",
            dir.display()
        );
    }
    Ok(images)
}

/// People who never enrolled: a folder of person folders, or a flat folder in which every
/// photo is a person of its own.
pub fn stranger_images(dir: &Path) -> anyhow::Result<Vec<Photo>> {
    if !sub_folders(dir)?.is_empty() {
        return labelled_images(dir);
    }
    let mut files = photos_in(dir)?;
    files.sort();
    if files.is_empty() {
        bail!("{} holds no JPEG or PNG photos", dir.display());
    }
    Ok(files
        .into_iter()
        .map(|path| Photo {
            person: format!("stranger:{}", file_name(&path)),
            path,
        })
        .collect())
}

fn sub_folders(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect())
}

fn photos_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_photo(p))
        .collect())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
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

/// What the engine made of one photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Described {
    /// The largest face's embedding, and whether enrollment would accept the photo (one
    /// person, quality gate passed) or why not.
    Face {
        embedding: Vec<f32>,
        enrollable: Result<(), String>,
    },
    NoFace,
    Unreadable(String),
}

impl Described {
    pub fn embedding(&self) -> Option<Embedding> {
        match self {
            Described::Face { embedding, .. } => Embedding::from_raw(embedding),
            _ => None,
        }
    }

    pub fn enrollable(&self) -> bool {
        matches!(
            self,
            Described::Face {
                enrollable: Ok(()),
                ..
            }
        )
    }
}

/// Photos with what the engine made of them, and the inference time (detect, align, quality,
/// embed; decoding excluded) of each photo that was not in the cache, ms.
pub struct Embedded {
    pub photos: Vec<(Photo, Described)>,
    pub times_ms: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
struct CacheLine {
    path: PathBuf,
    len: u64,
    described: Described,
}

/// Describes every photo, reading and extending `cache` (JSON lines keyed by path and size;
/// delete it after changing the models or the quality settings).
pub fn describe_all(
    engine: &mut FaceEngine,
    photos: Vec<Photo>,
    cache: Option<&Path>,
) -> anyhow::Result<Embedded> {
    let mut cached: HashMap<(PathBuf, u64), Described> = HashMap::new();
    if let Some(path) = cache.filter(|p| p.exists()) {
        let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
        for line in std::io::BufReader::new(file).lines() {
            let line: CacheLine = serde_json::from_str(&line?)
                .with_context(|| format!("{} is not an embeddings cache", path.display()))?;
            cached.insert((line.path, line.len), line.described);
        }
    }
    let mut writer = match cache {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => None,
    };
    let bar = progress(photos.len(), "embedding");
    let (mut out, mut times_ms) = (Vec::with_capacity(photos.len()), Vec::new());
    for photo in photos {
        bar.inc(1);
        let len = std::fs::metadata(&photo.path).map(|m| m.len()).unwrap_or(0);
        let key = (photo.path.clone(), len);
        let described = match cached.get(&key) {
            Some(d) => d.clone(),
            None => {
                let (d, took) = describe(engine, &photo.path)
                    .with_context(|| photo.path.display().to_string())?;
                times_ms.extend(took);
                if let Some(w) = writer.as_mut() {
                    let line = CacheLine {
                        path: key.0,
                        len,
                        described: d.clone(),
                    };
                    writeln!(w, "{}", serde_json::to_string(&line)?)?;
                }
                d
            }
        };
        out.push((photo, described));
    }
    bar.finish_and_clear();
    if let Some(mut w) = writer {
        w.flush()?;
    }
    Ok(Embedded {
        photos: out,
        times_ms,
    })
}

fn describe(engine: &mut FaceEngine, path: &Path) -> anyhow::Result<(Described, Option<f64>)> {
    let image = match std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| engine.decode(&bytes).map_err(|e| e.to_string()))
    {
        Ok(image) => image,
        Err(e) => return Ok((Described::Unreadable(e), None)),
    };
    let started = Instant::now();
    let faces = engine.detect(&image)?;
    let Some(largest) = faces.first() else {
        return Ok((Described::NoFace, Some(ms_since(started))));
    };
    let face = engine.describe(&image, largest)?;
    let took = ms_since(started);
    let refusal = enrollment_refusal(&faces, &face, engine.config().quality.min_score);
    Ok((
        Described::Face {
            embedding: face.embedding.as_slice().to_vec(),
            enrollable: refusal.map_or(Ok(()), Err),
        },
        Some(took),
    ))
}

fn ms_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}
