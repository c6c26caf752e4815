//! The decision rule: which enrolled person a face is, or nobody. Written once, used by the
//! device flow, the Verify trigger (embedded and Lambda) and offline grace, over any backend's
//! similarity scores; pure, so it is tested as tables.
//!
//! A door is open-set identification, not verification: a stranger is compared with every
//! enrolled face, so the per-comparison false-match rate adds up over the gallery. The
//! threshold therefore follows the number of enrolled faces: the operator sets the rate of
//! strangers let in per attempt (the false-positive identification rate, FPIR), the
//! per-comparison rate that allows is `1 - (1 - FPIR)^(1/faces)`, and the threshold giving it
//! is read off a calibration table of the model's impostor scores (`data/calibration/`).
//!
//! A person scores as their best-matching face (max fusion: a stranger's chance against a person
//! with K photos is at most K comparisons, which the face count already charges; mean fusion
//! would need every photo's score, which Rekognition does not return). The best person must also
//! beat the runner-up by a margin, or the attempt is ambiguous and denied.

pub mod calibrate;

use serde::{Deserialize, Serialize};

/// Scores of the model's impostor comparisons: the fraction at or above each threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// The model the scores are from (file name and SHA-256).
    pub model: String,
    /// The photos the scores were measured on, and how many comparisons.
    pub source: String,
    /// The command that rebuilt this table.
    pub command: String,
    /// Impostor comparisons behind the table.
    pub impostor_pairs: u64,
    /// Threshold ascending, rate descending. Rates below `1 / impostor_pairs` come from a fit of
    /// the tail (see `fitted_below`).
    pub points: Vec<CalibrationPoint>,
    /// Rates below this are extrapolated from the fitted tail, not counted.
    pub fitted_below: f64,
}

/// One row of a calibration table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationPoint {
    pub threshold: f32,
    /// Fraction of impostor comparisons scoring at or above `threshold`.
    pub rate: f64,
}

/// The calibration shipped for the SFace model (`facegate calibrate` rebuilds it).
const SFACE_TABLE: &str = include_str!("../../data/calibration/sface-int8bq.json");

/// The highest threshold a calibrated rule ever asks for: beyond it even the same photo may fail.
pub const MAX_THRESHOLD: f32 = 0.95;

impl Calibration {
    /// The shipped SFace table.
    pub fn sface() -> &'static Calibration {
        static TABLE: std::sync::OnceLock<Calibration> = std::sync::OnceLock::new();
        TABLE.get_or_init(|| {
            Calibration::from_json(SFACE_TABLE).expect("the shipped calibration table is valid")
        })
    }

    /// Parses and checks a table.
    pub fn from_json(text: &str) -> Result<Calibration, String> {
        let table: Calibration = serde_json::from_str(text).map_err(|e| e.to_string())?;
        table.check()?;
        Ok(table)
    }

    fn check(&self) -> Result<(), String> {
        if self.points.len() < 2 {
            return Err("a calibration table needs at least two points".into());
        }
        let ordered = self
            .points
            .windows(2)
            .all(|w| w[0].threshold < w[1].threshold && w[0].rate >= w[1].rate && w[1].rate > 0.0);
        let finite = self
            .points
            .iter()
            .all(|p| p.threshold.is_finite() && p.rate.is_finite() && p.rate <= 1.0);
        if !ordered || !finite {
            return Err(
                "calibration points must rise in threshold and fall in rate, all finite".into(),
            );
        }
        Ok(())
    }

    /// The threshold at which the impostor rate is `rate`, interpolating log-linearly between
    /// points and extrapolating the last segment's slope beyond the table (capped at
    /// [`MAX_THRESHOLD`]).
    pub fn threshold_for(&self, rate: f64) -> f32 {
        let p = &self.points;
        if rate >= p[0].rate {
            return p[0].threshold;
        }
        let segment = p
            .windows(2)
            .find(|w| rate >= w[1].rate)
            .unwrap_or(&p[p.len() - 2..]);
        let (a, b) = (segment[0], segment[1]);
        let (la, lb) = (a.rate.ln(), b.rate.ln());
        if la == lb {
            return b.threshold;
        }
        let t = a.threshold as f64
            + (rate.ln() - la) / (lb - la) * (b.threshold as f64 - a.threshold as f64);
        (t as f32).min(MAX_THRESHOLD)
    }

    /// The impostor rate at `threshold` (the inverse of [`Calibration::threshold_for`]).
    pub fn rate_at(&self, threshold: f32) -> f64 {
        let p = &self.points;
        if threshold <= p[0].threshold {
            return p[0].rate;
        }
        let segment = p
            .windows(2)
            .find(|w| threshold <= w[1].threshold)
            .unwrap_or(&p[p.len() - 2..]);
        let (a, b) = (segment[0], segment[1]);
        let f = (threshold - a.threshold) as f64 / (b.threshold - a.threshold) as f64;
        (a.rate.ln() + f * (b.rate.ln() - a.rate.ln())).exp()
    }
}

/// How the threshold is set.
#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    /// The same threshold whatever the gallery's size (Rekognition's percent; or an operator's
    /// explicit choice, which `facegate doctor` checks against the enrolled count).
    Fixed(f32),
    /// The threshold that lets in at most `fpir` of strangers per attempt at the gallery's size.
    Fpir {
        fpir: f64,
        calibration: &'static Calibration,
    },
}

/// Config section `[matching]`: how sure the door must be, for the embedded backend's SFace
/// scores (AWS mode's Rekognition threshold is `backend.aws.match_threshold`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchingConfig {
    /// The largest share of strangers' attempts that may be let in (FPIR), whatever the number
    /// of enrolled faces: the threshold follows from it and the calibration table.
    pub target_fpir: f64,
    /// The best person's score must beat any other person's by this much (cosine).
    pub margin: f32,
    /// A fixed cosine threshold instead of the calibrated one; `facegate doctor` warns when it
    /// is looser than `target_fpir` needs at the enrolled count.
    pub fixed_threshold: Option<f32>,
    /// Good frames of one track that must each identify the same person before the door asks
    /// the backend.
    pub frames: usize,
    /// A tracked face whose cosine to the mean of the track's earlier frames falls below this is
    /// someone else: the track starts over from it.
    pub track_similarity: f32,
}

impl Default for MatchingConfig {
    fn default() -> Self {
        Self {
            target_fpir: 1e-3,
            margin: DEFAULT_MARGIN,
            fixed_threshold: None,
            frames: 2,
            track_similarity: 0.5,
        }
    }
}

/// The default margin between the best and the second-best person (cosine).
pub const DEFAULT_MARGIN: f32 = 0.05;

impl MatchingConfig {
    /// The rule for SFace scores.
    pub fn rule(&self) -> DecisionRule {
        match self.fixed_threshold {
            Some(t) => DecisionRule::new(Threshold::Fixed(t), self.margin),
            None => DecisionRule::sface(self.target_fpir, self.margin),
        }
    }

    /// Every out-of-range value, naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.target_fpir > 0.0 && self.target_fpir <= 0.01) {
            problems.push(format!(
                "matching.target_fpir = {} must be above 0 and at most 0.01 (1 % of strangers' \
                 attempts let in)",
                self.target_fpir
            ));
        }
        if !(0.0..=0.3).contains(&self.margin) {
            problems.push(format!(
                "matching.margin = {} must be 0 to 0.3 (cosine)",
                self.margin
            ));
        }
        if let Some(t) = self.fixed_threshold
            && !(0.3..=MAX_THRESHOLD).contains(&t)
        {
            problems.push(format!(
                "matching.fixed_threshold = {t} must be 0.3 to {MAX_THRESHOLD}: below 0.3 \
                 strangers match (remove it to use the calibrated threshold)"
            ));
        }
        if !(0.2..=0.9).contains(&self.track_similarity) {
            problems.push(format!(
                "matching.track_similarity = {} must be 0.2 to 0.9 (cosine)",
                self.track_similarity
            ));
        }
        if !(1..=10).contains(&self.frames) {
            problems.push(format!("matching.frames = {} must be 1 to 10", self.frames));
        }
        problems
    }
}

/// Threshold and margin: the whole rule.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRule {
    threshold: Threshold,
    margin: f32,
}

/// What the rule says of one face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Identification {
    /// The candidate reaches the threshold and beats everyone else by the margin.
    Match {
        score: f32,
        runner_up: Option<f32>,
        threshold: f32,
    },
    /// The candidate does not reach the threshold (or there is no candidate).
    Unknown { best: Option<f32>, threshold: f32 },
    /// Someone else scores as high as the candidate, or within the margin.
    Ambiguous {
        score: f32,
        runner_up: f32,
        threshold: f32,
    },
}

impl Identification {
    pub fn is_match(&self) -> bool {
        matches!(self, Identification::Match { .. })
    }

    /// The candidate's score, when there is one.
    pub fn score(&self) -> Option<f32> {
        match *self {
            Identification::Match { score, .. } | Identification::Ambiguous { score, .. } => {
                Some(score)
            }
            Identification::Unknown { best, .. } => best,
        }
    }

    pub fn threshold(&self) -> f32 {
        match *self {
            Identification::Match { threshold, .. }
            | Identification::Unknown { threshold, .. }
            | Identification::Ambiguous { threshold, .. } => threshold,
        }
    }
}

impl DecisionRule {
    pub fn new(threshold: Threshold, margin: f32) -> Self {
        Self { threshold, margin }
    }

    /// The default rule for SFace scores: 0.1 % of strangers per attempt, a 0.05 margin.
    pub fn sface(fpir: f64, margin: f32) -> Self {
        Self::new(
            Threshold::Fpir {
                fpir,
                calibration: Calibration::sface(),
            },
            margin,
        )
    }

    /// Whether the threshold depends on the gallery's size (callers skip counting otherwise).
    pub fn needs_face_count(&self) -> bool {
        matches!(self.threshold, Threshold::Fpir { .. })
    }

    pub fn margin(&self) -> f32 {
        self.margin
    }

    /// The threshold for a gallery of `faces` enrolled faces.
    pub fn threshold(&self, faces: usize) -> f32 {
        match &self.threshold {
            Threshold::Fixed(t) => *t,
            Threshold::Fpir { fpir, calibration } => {
                calibration.threshold_for(per_comparison_rate(*fpir, faces))
            }
        }
    }

    /// Judges a candidate: `candidate` is the best score of the person in question (their
    /// best-matching face), `others` the best score of any other person's face, among a gallery
    /// of `faces` faces.
    pub fn decide(
        &self,
        candidate: Option<f32>,
        others: Option<f32>,
        faces: usize,
    ) -> Identification {
        let threshold = self.threshold(faces);
        let finite = |s: Option<f32>| s.filter(|s| s.is_finite());
        let (candidate, others) = (finite(candidate), finite(others));
        match candidate {
            Some(score) if score >= threshold => match others {
                Some(runner_up) if score - runner_up < self.margin => Identification::Ambiguous {
                    score,
                    runner_up,
                    threshold,
                },
                runner_up => Identification::Match {
                    score,
                    runner_up,
                    threshold,
                },
            },
            _ => Identification::Unknown {
                best: match (candidate, others) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                },
                threshold,
            },
        }
    }
}

/// The per-comparison false-match rate that keeps the chance of any false match among `faces`
/// comparisons at `fpir`.
pub fn per_comparison_rate(fpir: f64, faces: usize) -> f64 {
    let n = faces.max(1) as f64;
    // 1 - (1 - fpir)^(1/n), computed without cancellation for tiny rates.
    -((-fpir).ln_1p() / n).exp_m1()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> &'static Calibration {
        static T: std::sync::OnceLock<Calibration> = std::sync::OnceLock::new();
        T.get_or_init(|| Calibration {
            model: "test".into(),
            source: "test".into(),
            command: "test".into(),
            impostor_pairs: 1_000_000,
            fitted_below: 1e-6,
            points: vec![
                CalibrationPoint {
                    threshold: 0.2,
                    rate: 1e-1,
                },
                CalibrationPoint {
                    threshold: 0.3,
                    rate: 1e-2,
                },
                CalibrationPoint {
                    threshold: 0.4,
                    rate: 1e-3,
                },
                CalibrationPoint {
                    threshold: 0.5,
                    rate: 1e-4,
                },
            ],
        })
    }

    fn rule(margin: f32) -> DecisionRule {
        DecisionRule::new(
            Threshold::Fpir {
                fpir: 1e-3,
                calibration: table(),
            },
            margin,
        )
    }

    #[test]
    fn the_threshold_rises_with_the_number_of_enrolled_faces() {
        let r = rule(0.0);
        assert!((r.threshold(1) - 0.4).abs() < 1e-4, "{}", r.threshold(1));
        assert!((r.threshold(10) - 0.5).abs() < 1e-3, "{}", r.threshold(10));
        // Beyond the table, the last segment's slope: a tenth of the rate, 0.1 higher.
        assert!(
            (r.threshold(100) - 0.6).abs() < 1e-3,
            "{}",
            r.threshold(100)
        );
        assert!(r.threshold(1_000_000_000) <= MAX_THRESHOLD);
        let t: Vec<f32> = [1, 3, 30, 300, 3000].map(|n| r.threshold(n)).to_vec();
        assert!(t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
    }

    #[test]
    fn per_comparison_rate_divides_the_target_among_the_faces() {
        assert!((per_comparison_rate(1e-3, 1) - 1e-3).abs() < 1e-12);
        let r = per_comparison_rate(1e-3, 1000);
        assert!((r / 1.0005e-6 - 1.0).abs() < 1e-3, "{r}");
        // Any false match among n comparisons at r has the chance the operator asked for.
        let any = 1.0 - (1.0 - r).powi(1000);
        assert!((any - 1e-3).abs() < 1e-9, "{any}");
    }

    #[test]
    fn rate_at_inverts_threshold_for() {
        let t = table();
        for rate in [0.05, 3e-3, 2e-4] {
            let back = t.rate_at(t.threshold_for(rate));
            assert!((back / rate - 1.0).abs() < 1e-3, "{rate} -> {back}");
        }
    }

    #[test]
    fn the_decision_table() {
        let r = rule(0.05);
        let t = r.threshold(1);
        let m = |score, runner_up| Identification::Match {
            score,
            runner_up,
            threshold: t,
        };
        assert_eq!(r.decide(Some(0.6), None, 1), m(0.6, None));
        assert_eq!(r.decide(Some(0.6), Some(0.2), 1), m(0.6, Some(0.2)));
        assert_eq!(
            r.decide(Some(0.6), Some(0.57), 1),
            Identification::Ambiguous {
                score: 0.6,
                runner_up: 0.57,
                threshold: t
            },
            "two people within the margin"
        );
        assert!(
            !r.decide(Some(0.6), Some(0.7), 1).is_match(),
            "someone else is better"
        );
        assert_eq!(
            r.decide(Some(0.3), Some(0.1), 1),
            Identification::Unknown {
                best: Some(0.3),
                threshold: t
            }
        );
        assert_eq!(
            r.decide(None, Some(0.9), 1),
            Identification::Unknown {
                best: Some(0.9),
                threshold: t
            },
            "no candidate, whatever the others score"
        );
        assert!(!r.decide(Some(f32::NAN), None, 1).is_match());
        assert!(r.decide(Some(f32::INFINITY), None, 1).score().is_none());
    }

    #[test]
    fn a_score_that_passes_with_few_people_fails_with_many() {
        let r = rule(0.0);
        assert!(r.decide(Some(0.45), None, 1).is_match());
        assert!(!r.decide(Some(0.45), None, 1000).is_match());
    }

    #[test]
    fn a_fixed_threshold_ignores_the_gallery() {
        let r = DecisionRule::new(Threshold::Fixed(90.0), 1.0);
        assert!(!r.needs_face_count());
        assert_eq!(r.threshold(1), r.threshold(1_000_000));
        assert!(r.decide(Some(95.0), Some(80.0), 9).is_match());
        assert!(!r.decide(Some(95.0), Some(94.5), 9).is_match());
    }

    #[test]
    fn broken_tables_are_refused() {
        let mut t = table().clone();
        t.points.swap(0, 1);
        assert!(Calibration::from_json(&serde_json::to_string(&t).unwrap()).is_err());
        assert!(Calibration::from_json("{}").is_err());
    }

    #[test]
    fn the_shipped_table_loads_and_is_monotonic() {
        let t = Calibration::sface();
        assert!(t.impostor_pairs > 1_000_000, "{}", t.impostor_pairs);
        assert!(t.threshold_for(1e-3) < t.threshold_for(1e-6));
    }
}
