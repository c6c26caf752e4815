//! Verification accuracy from labelled embeddings: every same-person pair is genuine, every
//! different-person pair an impostor; FAR, FRR, TAR at a fixed FAR, and the equal error rate.

use serde::Serialize;

use super::embed::Embedding;

/// Similarities of every genuine and impostor pair.
#[derive(Debug, Clone, Default)]
pub struct PairScores {
    /// Sorted ascending.
    pub genuine: Vec<f32>,
    /// Sorted ascending.
    pub impostor: Vec<f32>,
}

impl PairScores {
    /// Scores every pair of `faces`, labelled by person.
    pub fn from_labelled<L: PartialEq>(faces: &[(L, Embedding)]) -> PairScores {
        let mut scores = PairScores::default();
        for (i, (li, ei)) in faces.iter().enumerate() {
            for (lj, ej) in &faces[i + 1..] {
                let s = ei.cosine(ej);
                if li == lj {
                    scores.genuine.push(s);
                } else {
                    scores.impostor.push(s);
                }
            }
        }
        scores.genuine.sort_by(f32::total_cmp);
        scores.impostor.sort_by(f32::total_cmp);
        scores
    }

    /// Fraction of impostor pairs at or above `threshold` (falsely accepted).
    pub fn far(&self, threshold: f32) -> f64 {
        fraction_at_or_above(&self.impostor, threshold)
    }

    /// Fraction of genuine pairs below `threshold` (falsely rejected).
    pub fn frr(&self, threshold: f32) -> f64 {
        1.0 - fraction_at_or_above(&self.genuine, threshold)
    }

    /// The true accept rate when the threshold is set so that FAR is `far`, and that threshold
    /// (the impostor quantile, linearly interpolated as numpy does).
    pub fn tar_at_far(&self, far: f64) -> Option<(f64, f32)> {
        let threshold = quantile(&self.impostor, 1.0 - far)?;
        Some((fraction_at_or_above(&self.genuine, threshold), threshold))
    }

    /// The equal error rate and the threshold where FAR and FRR meet.
    pub fn eer(&self) -> Option<(f64, f32)> {
        if self.genuine.is_empty() || self.impostor.is_empty() {
            return None;
        }
        let grid = (0..=2400).map(|i| -0.2 + i as f32 * 0.0005);
        grid.chain(self.genuine.iter().copied())
            .map(|t| {
                let (far, frr) = (self.far(t), self.frr(t));
                ((far - frr).abs(), (far + frr) / 2.0, t)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, eer, t)| (eer, t))
    }
}

/// The figures `facegate eval-faces` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub threshold: f32,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    pub far: f64,
    pub frr: f64,
    pub tar_at_far_1e3: Option<f64>,
    pub tar_at_far_1e4: Option<f64>,
    pub eer: Option<f64>,
    pub eer_threshold: Option<f32>,
}

impl Report {
    pub fn new(scores: &PairScores, threshold: f32) -> Report {
        let eer = scores.eer();
        Report {
            threshold,
            genuine_pairs: scores.genuine.len(),
            impostor_pairs: scores.impostor.len(),
            far: scores.far(threshold),
            frr: scores.frr(threshold),
            tar_at_far_1e3: scores.tar_at_far(1e-3).map(|t| t.0),
            tar_at_far_1e4: scores.tar_at_far(1e-4).map(|t| t.0),
            eer: eer.map(|e| e.0),
            eer_threshold: eer.map(|e| e.1),
        }
    }
}

fn fraction_at_or_above(sorted: &[f32], threshold: f32) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let below = sorted.partition_point(|&s| s < threshold);
    (sorted.len() - below) as f64 / sorted.len() as f64
}

/// numpy's default (linear) quantile of ascending `sorted`.
pub fn quantile(sorted: &[f32], q: f64) -> Option<f32> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = (h - lo as f64) as f32;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// The median of `values` (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::embed::EMBEDDING_DIM;

    fn scores(genuine: &[f32], impostor: &[f32]) -> PairScores {
        let mut s = PairScores {
            genuine: genuine.to_vec(),
            impostor: impostor.to_vec(),
        };
        s.genuine.sort_by(f32::total_cmp);
        s.impostor.sort_by(f32::total_cmp);
        s
    }

    #[test]
    fn far_and_frr_count_the_pairs_on_the_wrong_side() {
        let s = scores(&[0.2, 0.5, 0.7, 0.9], &[0.0, 0.1, 0.4, 0.6]);
        assert_eq!(s.far(0.363), 0.5);
        assert_eq!(s.frr(0.363), 0.25);
        assert_eq!(s.far(0.4), 0.5, "a pair at the threshold is accepted");
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn tar_at_far_sets_the_threshold_from_impostors() {
        let impostor: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0 * 0.5).collect();
        let s = scores(&[0.3, 0.6, 0.7, 0.8], &impostor);
        let (tar, t) = s.tar_at_far(1e-2).unwrap();
        assert!(t > 0.49 && t < 0.5, "{t}");
        assert_eq!(tar, 0.75);
    }

    #[test]
    fn separable_scores_have_zero_eer_and_overlapping_ones_do_not() {
        let s = scores(&[0.8, 0.9], &[0.1, 0.2]);
        assert_eq!(s.eer().unwrap().0, 0.0);
        let s = scores(&[0.1, 0.9], &[0.2, 0.8]);
        assert!((s.eer().unwrap().0 - 0.5).abs() < 1e-9);
    }

    #[test]
    fn pairs_are_split_by_label() {
        let e = |i: usize| {
            let mut v = [0.1; EMBEDDING_DIM];
            v[i] = 1.0;
            Embedding::from_raw(&v).unwrap()
        };
        let faces = [("a", e(0)), ("a", e(0)), ("b", e(1))];
        let s = PairScores::from_labelled(&faces);
        assert_eq!(s.genuine.len(), 1);
        assert_eq!(s.impostor.len(), 2);
        assert!((s.genuine[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
