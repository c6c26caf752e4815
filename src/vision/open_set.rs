//! Open-set identification accuracy, as at a door: probes of enrolled people and of strangers
//! are searched against a gallery and judged by the door's own [`DecisionRule`]. FPIR is the
//! share of strangers let in, FNIR the share of enrolled people not let in as themselves, and
//! misidentification the share let in as someone else (counted in FNIR too).

use serde::Serialize;

use super::embed::{EMBEDDING_DIM, Embedding, dot};
use crate::matching::{DecisionRule, Identification};

/// How a person's score is made from their faces' scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// The best face (the door's rule: works with any backend, charged per face).
    #[default]
    Max,
    /// The mean over the person's faces (for comparison: needs every face's score).
    Mean,
}

/// Enrolled faces in one matrix, each row owned by a person.
pub struct SearchGallery {
    people: Vec<String>,
    owners: Vec<usize>,
    vectors: Vec<f32>,
    fusion: Fusion,
}

impl SearchGallery {
    /// The gallery of `people`, each with their enrolment embeddings.
    pub fn new<'a>(
        people: impl IntoIterator<Item = (&'a str, &'a [Embedding])>,
        fusion: Fusion,
    ) -> Self {
        let mut gallery = SearchGallery {
            people: Vec::new(),
            owners: Vec::new(),
            vectors: Vec::new(),
            fusion,
        };
        for (person, faces) in people {
            let index = gallery.people.len();
            gallery.people.push(person.to_string());
            for face in faces {
                gallery.owners.push(index);
                gallery.vectors.extend_from_slice(face.as_slice());
            }
        }
        gallery
    }

    pub fn faces(&self) -> usize {
        self.owners.len()
    }

    pub fn people(&self) -> usize {
        self.people.len()
    }

    /// The best person and their score, and the best score of anyone else.
    pub fn rank(&self, probe: &Embedding) -> Option<(&str, f32, Option<f32>)> {
        let mut best = vec![f32::NEG_INFINITY; self.people.len()];
        let mut sums = vec![(0.0f32, 0usize); self.people.len()];
        for (row, vector) in self.vectors.chunks_exact(EMBEDDING_DIM).enumerate() {
            let owner = self.owners[row];
            let score = dot(probe.as_slice(), vector);
            best[owner] = best[owner].max(score);
            sums[owner].0 += score;
            sums[owner].1 += 1;
        }
        if self.fusion == Fusion::Mean {
            for (b, (sum, n)) in best.iter_mut().zip(&sums) {
                if *n > 0 {
                    *b = sum / *n as f32;
                }
            }
        }
        let (mut first, mut second) = (None::<(usize, f32)>, None::<f32>);
        for (person, &score) in best.iter().enumerate() {
            match first {
                Some((_, top)) if score <= top => {
                    second = Some(second.map_or(score, |s| s.max(score)));
                }
                // A new best: the old best (never below the runner-up) becomes the runner-up.
                _ => {
                    second = first.map(|(_, top)| top).or(second);
                    first = Some((person, score));
                }
            }
        }
        first.map(|(p, s)| (self.people[p].as_str(), s, second))
    }

    /// What the door decides for `probe`: the person it would let in, and the rule's verdict.
    pub fn decide(&self, probe: &Embedding, rule: &DecisionRule) -> (Option<&str>, Identification) {
        match self.rank(probe) {
            Some((person, score, others)) => {
                let verdict = rule.decide(Some(score), others, self.faces());
                (verdict.is_match().then_some(person), verdict)
            }
            None => (None, rule.decide(None, None, self.faces())),
        }
    }
}

/// A probe: who it really is (`None` for a photo in which no face was found), and whether that
/// person is enrolled.
pub struct Probe<'a> {
    pub person: &'a str,
    pub embedding: Option<&'a Embedding>,
    pub enrolled: bool,
}

/// The counts behind FPIR, FNIR and misidentification.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    pub genuine: usize,
    /// Genuine probes let in as someone else.
    pub misidentified: usize,
    /// Genuine probes not let in as themselves (misidentified ones included).
    pub missed: usize,
    /// Genuine probes in which no face was found (counted in `missed`).
    pub no_face: usize,
    pub strangers: usize,
    pub strangers_granted: usize,
    /// Attempts the margin refused (genuine or stranger).
    pub ambiguous: usize,
    /// The best score of every stranger probe with a face, for the empirical threshold.
    #[serde(skip)]
    pub stranger_best: Vec<f32>,
    /// For every genuine probe, its own person's score when that person ranks first (`None`:
    /// no face, or someone else ranks first), for FNIR at any threshold.
    #[serde(skip)]
    pub genuine_first: Vec<Option<f32>>,
}

impl Tally {
    /// The share of genuine probes a threshold `t` would miss (margin aside).
    pub fn fnir_at(&self, t: f32) -> f64 {
        let missed = self
            .genuine_first
            .iter()
            .filter(|s| s.is_none_or(|s| s < t))
            .count();
        missed as f64 / self.genuine_first.len().max(1) as f64
    }
}

impl Tally {
    /// Adds another tally's counts (repetitions of an experiment).
    pub fn add(&mut self, other: Tally) {
        self.genuine += other.genuine;
        self.misidentified += other.misidentified;
        self.missed += other.missed;
        self.no_face += other.no_face;
        self.strangers += other.strangers;
        self.strangers_granted += other.strangers_granted;
        self.ambiguous += other.ambiguous;
        self.stranger_best.extend(other.stranger_best);
        self.genuine_first.extend(other.genuine_first);
    }
}

/// Judges every probe against `gallery` with `rule`.
pub fn evaluate(gallery: &SearchGallery, probes: &[Probe<'_>], rule: &DecisionRule) -> Tally {
    let mut tally = Tally::default();
    for probe in probes {
        let decision = probe.embedding.map(|e| gallery.decide(e, rule));
        if let Some((_, Identification::Ambiguous { .. })) = decision {
            tally.ambiguous += 1;
        }
        let granted = decision.as_ref().and_then(|(who, _)| *who);
        if probe.enrolled {
            tally.genuine += 1;
            if probe.embedding.is_none() {
                tally.no_face += 1;
            }
            if granted != Some(probe.person) {
                tally.missed += 1;
            }
            if granted.is_some_and(|who| who != probe.person) {
                tally.misidentified += 1;
            }
            let first = probe.embedding.and_then(|e| gallery.rank(e));
            tally.genuine_first.push(
                first
                    .filter(|(who, _, _)| *who == probe.person)
                    .map(|(_, score, _)| score),
            );
        } else {
            if let Some(e) = probe.embedding
                && let Some((_, score, _)) = gallery.rank(e)
            {
                tally.stranger_best.push(score);
            }
            tally.strangers += 1;
            if granted.is_some() {
                tally.strangers_granted += 1;
            }
        }
    }
    tally
}

/// A proportion with its 95 % Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub count: usize,
    pub of: usize,
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

impl Rate {
    pub fn new(count: usize, of: usize) -> Rate {
        let (low, high) = wilson(count, of);
        Rate {
            count,
            of,
            rate: if of == 0 {
                0.0
            } else {
                count as f64 / of as f64
            },
            low,
            high,
        }
    }
}

/// The 95 % Wilson score interval of `k` successes in `n` trials.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n, z) = (k as f64, n as f64, 1.959_964);
    let p = k / n;
    let centre = p + z * z / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    let denominator = 1.0 + z * z / n;
    // At the ends the bounds are exact: no successes cannot have a rate below 0.
    let low = if k == 0.0 {
        0.0
    } else {
        ((centre - spread) / denominator).max(0.0)
    };
    let high = if k == n {
        1.0
    } else {
        ((centre + spread) / denominator).min(1.0)
    };
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::Threshold;

    fn axis(i: usize, noise: f32) -> Embedding {
        let mut v = [noise; EMBEDDING_DIM];
        v[i] = 1.0;
        Embedding::from_raw(&v).unwrap()
    }

    #[test]
    fn rank_fuses_by_the_best_face_and_reports_the_runner_up() {
        let (a, b) = ([axis(0, 0.0), axis(1, 0.0)], [axis(2, 0.0)]);
        let g = SearchGallery::new([("a", &a[..]), ("b", &b[..])], Fusion::Max);
        assert_eq!((g.people(), g.faces()), (2, 3));
        let (who, score, others) = g.rank(&axis(1, 0.0)).unwrap();
        assert_eq!(who, "a");
        assert!((score - 1.0).abs() < 1e-6);
        assert!(others.unwrap().abs() < 1e-6);
        let mean = SearchGallery::new([("a", &a[..]), ("b", &b[..])], Fusion::Mean);
        let (_, score, _) = mean.rank(&axis(1, 0.0)).unwrap();
        assert!((score - 0.5).abs() < 1e-6, "{score}");
    }

    #[test]
    fn evaluate_counts_hits_misses_misidentifications_and_strangers() {
        let (a, b) = ([axis(0, 0.0)], [axis(1, 0.0)]);
        let g = SearchGallery::new([("a", &a[..]), ("b", &b[..])], Fusion::Max);
        let rule = DecisionRule::new(Threshold::Fixed(0.9), 0.05);
        let (ea, eb, stranger) = (axis(0, 0.01), axis(1, 0.01), axis(5, 0.01));
        let probes = [
            Probe {
                person: "a",
                embedding: Some(&ea),
                enrolled: true,
            },
            Probe {
                person: "a",
                embedding: Some(&eb),
                enrolled: true,
            }, // looks like b
            Probe {
                person: "b",
                embedding: None,
                enrolled: true,
            },
            Probe {
                person: "x",
                embedding: Some(&stranger),
                enrolled: false,
            },
            Probe {
                person: "y",
                embedding: Some(&ea),
                enrolled: false,
            }, // a's double
        ];
        let t = evaluate(&g, &probes, &rule);
        assert_eq!(
            (t.genuine, t.missed, t.misidentified, t.no_face),
            (3, 2, 1, 1)
        );
        assert_eq!((t.strangers, t.strangers_granted), (2, 1));
        assert_eq!(t.stranger_best.len(), 2);
    }

    #[test]
    fn wilson_intervals_bracket_the_rate() {
        let (lo, hi) = wilson(0, 1000);
        assert_eq!(lo, 0.0);
        assert!(hi > 0.003 && hi < 0.004, "{hi}");
        let (lo, hi) = wilson(50, 100);
        assert!(
            lo < 0.5 && hi > 0.5 && (hi - lo - 0.19).abs() < 0.01,
            "{lo} {hi}"
        );
    }
}
