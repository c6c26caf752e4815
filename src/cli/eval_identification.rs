//! `facegate eval-identification`: the door's own accuracy, open-set 1:N as at a door. People
//! of `--enroll` folders are enrolled with their first `--photos` photos that enrollment accepts
//! (always keeping one photo back as a probe), the rest of their photos are genuine probes, and
//! every photo of a stranger (`--strangers`, and the people not drawn into the gallery) is an
//! attempt by someone who never enrolled. Every probe is judged by the configured decision rule.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::photo_set::{Described, Photo, describe_all, labelled_images, stranger_images};
use super::{Failure, GlobalArgs, load_config, print_json};
use crate::matching::DecisionRule;
use crate::vision::eval::quantile;
use crate::vision::open_set::{Fusion, Probe, Rate, SearchGallery, Tally, evaluate};
use crate::vision::{Embedding, FaceEngine};

#[derive(Debug, Args)]
pub struct EvalIdentificationArgs {
    /// A folder with one sub-folder of photos per person (repeat for more)
    #[arg(long = "enroll", value_name = "DIR", required = true)]
    pub enroll: Vec<PathBuf>,
    /// People who never enrolled: a folder of photos (one person each) or of person folders
    /// (repeat for more)
    #[arg(long = "strangers", value_name = "DIR")]
    pub strangers: Vec<PathBuf>,
    /// Enrolment photos per person, e.g. `1,3`
    #[arg(long, value_name = "K,…", value_delimiter = ',', default_value = "3")]
    pub photos: Vec<usize>,
    /// Gallery sizes in people, e.g. `100,300,all`
    #[arg(long, value_name = "N,…", value_delimiter = ',', default_value = "all")]
    pub enrolled: Vec<String>,
    /// Random galleries drawn per size (a gallery of everyone is drawn once)
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Seed of the draws
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Target FPIR, overriding matching.target_fpir
    #[arg(long, value_name = "RATE")]
    pub fpir: Option<f64>,
    /// Margin, overriding matching.margin
    #[arg(long, value_name = "COSINE")]
    pub margin: Option<f32>,
    /// How a person's score is made from their faces': `max` (the door's rule) or `mean` (to
    /// compare)
    #[arg(long, value_enum, default_value_t = Fusion::Max)]
    pub fusion: Fusion,
    /// Keep embeddings in this file (JSON lines) and reuse them on the next run
    #[arg(long, value_name = "PATH")]
    pub cache: Option<PathBuf>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// One gallery size and photo count, over its repetitions.
#[derive(Debug, Serialize)]
struct Row {
    photos_per_person: usize,
    enrolled_people: usize,
    /// Mean faces per gallery (people with fewer accepted photos enroll fewer).
    faces: f64,
    galleries: usize,
    /// The rule's threshold at the mean gallery size.
    threshold: f32,
    fpir: Rate,
    fnir: Rate,
    misidentification: Rate,
    ambiguous: usize,
    genuine_without_face: usize,
    /// The top-1 score a stranger must not reach for the target FPIR, measured on these
    /// strangers (what the threshold would have to be, margin aside).
    empirical_threshold: Option<f32>,
    /// FNIR at that empirical threshold, margin aside: how well the faces separate,
    /// whatever the calibration.
    fnir_at_empirical_threshold: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    rule: String,
    fusion: Fusion,
    target_fpir: f64,
    margin: f32,
    people_enrollable: usize,
    stranger_photos: usize,
    rows: Vec<Row>,
}

/// A person with embeddings of each of their photos (`None`: no face found), and which of them
/// enrollment accepts.
struct Person {
    name: String,
    photos: Vec<(Option<Embedding>, bool)>,
}

pub fn run(global: &GlobalArgs, args: EvalIdentificationArgs) -> Result<u8, Failure> {
    let config = load_config(global)?;
    let mut matching = config.matching.clone();
    if let Some(fpir) = args.fpir {
        matching.target_fpir = fpir;
    }
    if let Some(margin) = args.margin {
        matching.margin = margin;
    }
    let problems = matching.problems();
    if !problems.is_empty() {
        return Err(crate::config::ConfigError::Invalid(problems).into());
    }
    let rule = matching.rule();
    let mut engine = FaceEngine::load(&config.vision)?;
    let (people, strangers) = load(&mut engine, &args)?;
    let mut rows = Vec::new();
    for &k in &args.photos {
        let eligible: Vec<&Person> = people.iter().filter(|p| enrolment(p, k).0 > 0).collect();
        for size in &args.enrolled {
            let n = match size.as_str() {
                "all" => eligible.len(),
                n => n.parse::<usize>().map_err(|_| {
                    anyhow::anyhow!("--enrolled {n:?}: expected a number of people or `all`")
                })?,
            };
            if n == 0 || n > eligible.len() {
                return Err(anyhow::anyhow!(
                    "--enrolled {n}: {} people can be enrolled with {k} photo(s)",
                    eligible.len()
                )
                .into());
            }
            rows.push(measure(
                &eligible, &strangers, k, n, &rule, &matching, &args,
            ));
        }
    }
    let report = Report {
        rule: format!("{rule:?}"),
        fusion: args.fusion,
        target_fpir: matching.target_fpir,
        margin: matching.margin,
        people_enrollable: people.iter().filter(|p| enrolment(p, 1).0 > 0).count(),
        stranger_photos: strangers.len(),
        rows,
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(0)
}

/// Embeds every photo; returns the enrollable people and the strangers' embeddings.
fn load(
    engine: &mut FaceEngine,
    args: &EvalIdentificationArgs,
) -> anyhow::Result<(Vec<Person>, Vec<Option<Embedding>>)> {
    let mut photos: Vec<Photo> = Vec::new();
    for (i, dir) in args.enroll.iter().enumerate() {
        photos.extend(labelled_images(dir)?.into_iter().map(|mut p| {
            p.person = format!("{i}:{}", p.person);
            p
        }));
    }
    let enrolled_photos = photos.len();
    for dir in &args.strangers {
        photos.extend(stranger_images(dir)?);
    }
    let described = describe_all(engine, photos, args.cache.as_deref())?;
    let mut people: BTreeMap<String, Person> = BTreeMap::new();
    let mut strangers = Vec::new();
    for (i, (photo, d)) in described.photos.into_iter().enumerate() {
        if matches!(d, Described::Unreadable(_)) {
            continue;
        }
        if i >= enrolled_photos {
            strangers.push(d.embedding());
            continue;
        }
        people
            .entry(photo.person.clone())
            .or_insert_with(|| Person {
                name: photo.person,
                photos: Vec::new(),
            })
            .photos
            .push((d.embedding(), d.enrollable()));
    }
    Ok((people.into_values().collect(), strangers))
}

/// How many photos `person` enrolls with at `k` (their first accepted ones, keeping at least one
/// photo back as a probe), and the indices of those photos.
fn enrolment(person: &Person, k: usize) -> (usize, Vec<usize>) {
    let room = person.photos.len().saturating_sub(1);
    let chosen: Vec<usize> = person
        .photos
        .iter()
        .enumerate()
        .filter(|(_, (_, ok))| *ok)
        .map(|(i, _)| i)
        .take(k.min(room))
        .collect();
    (chosen.len(), chosen)
}

fn measure(
    eligible: &[&Person],
    strangers: &[Option<Embedding>],
    k: usize,
    n: usize,
    rule: &DecisionRule,
    matching: &crate::matching::MatchingConfig,
    args: &EvalIdentificationArgs,
) -> Row {
    let draws = if n == eligible.len() {
        1
    } else {
        args.repeats.max(1)
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ (k as u64) << 32 ^ n as u64);
    let (mut tally, mut faces) = (Tally::default(), 0usize);
    for _ in 0..draws {
        let mut order: Vec<usize> = (0..eligible.len()).collect();
        order.shuffle(&mut rng);
        let (inside, outside) = order.split_at(n);
        let enrolled: Vec<(&str, Vec<Embedding>, Vec<usize>)> = inside
            .iter()
            .map(|&i| {
                let p = eligible[i];
                let (_, chosen) = enrolment(p, k);
                let embeddings = chosen.iter().filter_map(|&c| p.photos[c].0).collect();
                (p.name.as_str(), embeddings, chosen)
            })
            .collect();
        let gallery = SearchGallery::new(
            enrolled.iter().map(|(n, e, _)| (*n, e.as_slice())),
            args.fusion,
        );
        faces += gallery.faces();
        let mut probes: Vec<Probe<'_>> = Vec::new();
        for (&i, (name, _, chosen)) in inside.iter().zip(&enrolled) {
            for (c, (embedding, _)) in eligible[i].photos.iter().enumerate() {
                if !chosen.contains(&c) {
                    probes.push(Probe {
                        person: name,
                        embedding: embedding.as_ref(),
                        enrolled: true,
                    });
                }
            }
        }
        for &i in outside {
            for (embedding, _) in &eligible[i].photos {
                probes.push(Probe {
                    person: &eligible[i].name,
                    embedding: embedding.as_ref(),
                    enrolled: false,
                });
            }
        }
        for embedding in strangers {
            probes.push(Probe {
                person: "stranger",
                embedding: embedding.as_ref(),
                enrolled: false,
            });
        }
        tally.add(evaluate(&gallery, &probes, rule));
    }
    let mean_faces = faces as f64 / draws as f64;
    tally.stranger_best.sort_by(f32::total_cmp);
    let empirical = quantile(&tally.stranger_best, 1.0 - matching.target_fpir);
    Row {
        photos_per_person: k,
        enrolled_people: n,
        faces: mean_faces,
        galleries: draws,
        threshold: rule.threshold(mean_faces.round() as usize),
        fpir: Rate::new(tally.strangers_granted, tally.strangers),
        fnir: Rate::new(tally.missed, tally.genuine),
        misidentification: Rate::new(tally.misidentified, tally.genuine),
        ambiguous: tally.ambiguous,
        genuine_without_face: tally.no_face,
        empirical_threshold: empirical,
        fnir_at_empirical_threshold: empirical.map(|t| tally.fnir_at(t)),
    }
}

fn print_text(r: &Report) {
    println!(
        "rule: target FPIR {} with margin {} ({}); {} people can be enrolled; {} stranger photos",
        r.target_fpir, r.margin, r.rule, r.people_enrollable, r.stranger_photos
    );
    println!(
        "\n{:>6} {:>6} {:>7} {:>5}  {:>9}  {:<34} {:<34} {:<24} {:>5} {:>10} {:>9}",
        "photos",
        "people",
        "faces",
        "draws",
        "threshold",
        "FPIR (95 % CI)",
        "FNIR (95 % CI)",
        "misidentified",
        "ambig",
        "empirical",
        "FNIR there"
    );
    let rate = |r: &Rate| {
        format!(
            "{:.3} % [{:.3}, {:.3}] {}/{}",
            r.rate * 100.0,
            r.low * 100.0,
            r.high * 100.0,
            r.count,
            r.of
        )
    };
    for row in &r.rows {
        println!(
            "{:>6} {:>6} {:>7.0} {:>5}  {:>9.3}  {:<34} {:<34} {:<24} {:>5} {:>10} {:>9}",
            row.photos_per_person,
            row.enrolled_people,
            row.faces,
            row.galleries,
            row.threshold,
            rate(&row.fpir),
            rate(&row.fnir),
            rate(&row.misidentification),
            row.ambiguous,
            row.empirical_threshold
                .map_or("n/a".into(), |t| format!("{t:.3}")),
            row.fnir_at_empirical_threshold
                .map_or("n/a".into(), |f| format!("{:.2} %", f * 100.0)),
        );
    }
    println!(
        "\nFNIR counts genuine photos in which no face was found; misidentified ones are in \
         FNIR too. Strangers are --strangers plus every photo of the people not drawn. \
         'empirical' is the top-1 score that lets in the target share of these strangers, and \
         'FNIR there' the FNIR at it (margin aside)."
    );
}
