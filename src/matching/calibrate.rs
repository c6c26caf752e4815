//! Building a calibration table from impostor scores (`facegate calibrate`).
//!
//! Down to the rate at which at least [`MIN_COUNT`] comparisons still score above the
//! threshold, the table is counted. Below it, a door with thousands of faces still needs an
//! answer, so the tail is extrapolated: log(rate) is fitted by a straight line over the last
//! counted decade. An exponential tail is heavier than the near-Gaussian tail such scores have,
//! so the extrapolated thresholds err on the strict side.

use super::{Calibration, CalibrationPoint};

/// Comparisons above a threshold needed to count its rate rather than fit it.
pub const MIN_COUNT: usize = 25;

/// Rates the table lists, from loose to strict (fitted below the counted floor).
const RATES: [f64; 19] = [
    1e-1, 5e-2, 2e-2, 1e-2, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4, 1e-4, 5e-5, 2e-5, 1e-5, 5e-6, 2e-6, 1e-6,
    1e-7, 1e-8, 1e-9,
];

/// Why a table could not be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CalibrateError {
    #[error("{0} impostor comparisons are too few: at least {min} are needed", min = MIN_COUNT * 1000)]
    TooFew(usize),
}

/// The table for `impostor` scores (sorted ascending), labelled with where they came from.
pub fn table(
    impostor: &[f32],
    model: String,
    source: String,
    command: String,
) -> Result<Calibration, CalibrateError> {
    let n = impostor.len();
    if n < MIN_COUNT * 1000 {
        return Err(CalibrateError::TooFew(n));
    }
    // The score at or above which `k` comparisons lie.
    let at_count = |k: usize| impostor[n - k];
    let floor = MIN_COUNT as f64 / n as f64;
    let mut points: Vec<CalibrationPoint> = RATES
        .iter()
        .filter(|&&rate| rate >= floor)
        .map(|&rate| {
            let k = ((rate * n as f64).round() as usize).clamp(1, n);
            CalibrationPoint {
                threshold: at_count(k),
                rate: k as f64 / n as f64,
            }
        })
        .collect();
    let counted = CalibrationPoint {
        threshold: at_count(MIN_COUNT),
        rate: floor,
    };
    points.push(counted);
    // Fit log(rate) = a + b·threshold over the last counted decade.
    let fit: Vec<(f64, f64)> = (MIN_COUNT..=MIN_COUNT * 10)
        .step_by(5)
        .map(|k| (at_count(k) as f64, (k as f64 / n as f64).ln()))
        .collect();
    let slope = least_squares_slope(&fit)
        .filter(|b| *b < 0.0)
        .unwrap_or(-50.0);
    for &rate in RATES.iter().filter(|&&r| r < floor) {
        let threshold = counted.threshold as f64 + (rate.ln() - floor.ln()) / slope;
        points.push(CalibrationPoint {
            threshold: threshold as f32,
            rate,
        });
    }
    points.sort_by(|a, b| a.threshold.total_cmp(&b.threshold));
    points.dedup_by(|b, a| b.threshold <= a.threshold || b.rate >= a.rate);
    Ok(Calibration {
        model,
        source,
        command,
        impostor_pairs: n as u64,
        points,
        fitted_below: floor,
    })
}

fn least_squares_slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if n < 2.0 {
        return None;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (sxy, sxx) = points.iter().fold((0.0, 0.0), |(sxy, sxx), (x, y)| {
        (sxy + (x - mx) * (y - my), sxx + (x - mx) * (x - mx))
    });
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores with an exactly exponential tail: P(score ≥ t) = e^(-20 t) on [0, ∞).
    fn exponential(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let p = 1.0 - (i as f64 + 0.5) / n as f64;
                (-p.ln() / 20.0) as f32
            })
            .collect()
    }

    #[test]
    fn counted_rates_match_the_scores_and_the_tail_follows_the_fit() {
        let scores = exponential(200_000);
        let t = table(&scores, "m".into(), "s".into(), "c".into()).unwrap();
        assert!(t.check().is_ok());
        assert_eq!(t.impostor_pairs, 200_000);
        // Counted: 1e-3 of the scores lie above the threshold for 1e-3.
        let th = t.threshold_for(1e-3);
        let above = scores.iter().filter(|&&s| s >= th).count() as f64 / 200_000.0;
        assert!((above / 1e-3 - 1.0).abs() < 0.05, "{above}");
        // Fitted: the exact tail gives t = -ln(rate)/20.
        for rate in [1e-6_f64, 1e-8] {
            let expected = -rate.ln() / 20.0;
            let got = t.threshold_for(rate) as f64;
            assert!((got - expected).abs() < 0.02, "{rate}: {got} vs {expected}");
        }
        assert!(t.fitted_below > 1e-4 && t.fitted_below < 2e-4);
    }

    #[test]
    fn too_few_scores_are_refused() {
        assert_eq!(
            table(&exponential(100), "m".into(), "s".into(), "c".into()).unwrap_err(),
            CalibrateError::TooFew(100)
        );
    }
}
