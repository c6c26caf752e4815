//! `facegate bench vision`: median time per stage (decode, detect, align, embed) on real
//! photos, and 1:N search time at several gallery sizes. Single numbers on a shared machine
//! are noise: every figure is a median over many runs, with the core count printed beside it.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::anyhow;
use clap::Args;
use serde::Serialize;

use crate::cli::photo_set::{labelled_images, progress};
use crate::cli::{Failure, GlobalArgs, load_engine, print_json};
use crate::vision::embed::EMBEDDING_DIM;
use crate::vision::eval::median;
use crate::vision::{Embedding, Gallery, image_io};

#[derive(Debug, Args)]
pub struct VisionBenchArgs {
    /// Folder of photos, one sub-folder per person [default: ../shared/faces/dev]
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// How many photos to time
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Gallery sizes for the 1:N search
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000, 50_000])]
    pub gallery: Vec<usize>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct StageMedians {
    decode_ms: Option<f64>,
    detect_ms: Option<f64>,
    align_ms: Option<f64>,
    embed_ms: Option<f64>,
    detect_align_embed_ms: Option<f64>,
}

#[derive(Serialize)]
struct SearchTiming {
    gallery_size: usize,
    queries: usize,
    median_ms: Option<f64>,
}

#[derive(Serialize)]
struct VisionBench {
    cores: usize,
    runtime: String,
    threads: usize,
    photos: usize,
    stages: StageMedians,
    search: Vec<SearchTiming>,
}

pub fn run(global: &GlobalArgs, args: VisionBenchArgs) -> Result<u8, Failure> {
    let dir = args
        .images
        .clone()
        .unwrap_or_else(|| PathBuf::from("../shared/faces/dev"));
    if !dir.is_dir() {
        return Err(anyhow!(
            "no photos at {}: pass --images DIR (one sub-folder of photos per person)",
            dir.display()
        )
        .into());
    }
    let mut photos = labelled_images(&dir)?;
    photos.truncate(args.count.max(1));
    let mut engine = load_engine(global)?;
    let limits = engine.config().images;

    let (mut decode, mut detect, mut align, mut embed, mut total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let bar = progress(photos.len(), "timing stages");
    for photo in &photos {
        bar.inc(1);
        let bytes =
            image_io::read_file(&photo.path, limits.max_bytes).map_err(anyhow::Error::from)?;
        let t = Instant::now();
        let Ok(image) = image_io::decode(&bytes, &limits) else {
            continue;
        };
        decode.push(ms(t));
        let t = Instant::now();
        let faces = engine.detect(&image)?;
        detect.push(ms(t));
        let Some(face) = faces.first() else { continue };
        let t = Instant::now();
        let aligned = engine.align(&image, face);
        align.push(ms(t));
        let t = Instant::now();
        engine.embed_aligned(&aligned)?;
        embed.push(ms(t));
        total.push(detect[detect.len() - 1] + align[align.len() - 1] + embed[embed.len() - 1]);
    }
    bar.finish_and_clear();
    if total.is_empty() {
        return Err(anyhow!("no face was found in any photo; nothing to time").into());
    }

    let search = args.gallery.iter().map(|&n| time_search(n)).collect();
    let report = VisionBench {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        runtime: engine.config().runtime.to_string(),
        threads: engine.config().threads,
        photos: photos.len(),
        stages: StageMedians {
            decode_ms: median(&decode),
            detect_ms: median(&detect),
            align_ms: median(&align),
            embed_ms: median(&embed),
            detect_align_embed_ms: median(&total),
        },
        search,
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(0)
}

pub(super) fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Median time of one top-5 search over `size` random unit embeddings.
fn time_search(size: usize) -> SearchTiming {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut random_embedding = || {
        let values: Vec<f32> = (0..EMBEDDING_DIM)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        Embedding::from_raw(&values).expect("random values have a non-zero norm")
    };
    let mut gallery = Gallery::new();
    for i in 0..size {
        gallery.insert(format!("face-{i}"), &random_embedding());
    }
    let queries = 101;
    let times: Vec<f64> = (0..queries)
        .map(|_| {
            let q = random_embedding();
            let t = Instant::now();
            std::hint::black_box(gallery.search(&q, 5));
            ms(t)
        })
        .collect();
    SearchTiming {
        gallery_size: size,
        queries,
        median_ms: median(&times),
    }
}

fn print_text(r: &VisionBench) {
    let f = |v: Option<f64>| {
        v.map(|v| format!("{v:.2} ms"))
            .unwrap_or_else(|| "n/a".into())
    };
    println!(
        "machine: {} core(s); runtime {} with {} thread(s); {} photos",
        r.cores, r.runtime, r.threads, r.photos
    );
    println!("median decode              {}", f(r.stages.decode_ms));
    println!("median detect              {}", f(r.stages.detect_ms));
    println!("median align               {}", f(r.stages.align_ms));
    println!("median embed               {}", f(r.stages.embed_ms));
    println!(
        "median detect+align+embed  {}",
        f(r.stages.detect_align_embed_ms)
    );
    for s in &r.search {
        println!(
            "1:N search, {:>6} faces    {} (median of {})",
            s.gallery_size,
            f(s.median_ms),
            s.queries
        );
    }
}
