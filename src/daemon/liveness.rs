//! Passive liveness: a live face moves. Across the frames a face is tracked, its landmarks
//! (normalised by the eye distance, so distance to the camera does not matter) must show
//! natural jitter and a little pose change. A still photo held perfectly steady, or a frozen
//! replay of one frame, shows neither and is refused before any frame leaves the device.
//!
//! What this does not stop: a photo moved by hand in front of the camera, a video replayed on a
//! screen, a mask. docs/security.md says so. The optional active check (a head turned both ways
//! while tracked, asked for by a sign at the door) narrows it: a flat photo turned by hand
//! shows no nose moving across the eye line in both directions.

use serde::{Deserialize, Serialize};

use crate::vision::detect::Landmarks;

/// Thresholds (config section `[liveness]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LivenessConfig {
    /// Frames of one face needed before a decision.
    pub min_frames: usize,
    /// A track that has not looked alive after this many good frames is refused: a denied
    /// attempt, audited, with a cooldown. Leave time for the head turn when `head_turn` is on.
    pub max_frames: usize,
    /// Lowest mean landmark motion between consecutive frames, in eye distances.
    pub min_jitter: f32,
    /// Highest mean landmark motion: above it the track is not one steady face.
    pub max_jitter: f32,
    /// Lowest spread of yaw across the track (head turning a little, as people do).
    pub min_yaw_spread: f32,
    /// Active check: the person must turn their head to each side while tracked.
    pub head_turn: bool,
    /// How far each way: the nose's offset from the eyes' midpoint along the eye line, in eye
    /// distances (about 0.15 is a 15° turn). Must stay below `vision.quality.max_yaw`.
    pub head_turn_yaw: f32,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        Self {
            min_frames: 5,
            max_frames: 15,
            min_jitter: 0.004,
            max_jitter: 0.25,
            min_yaw_spread: 0.005,
            head_turn: false,
            head_turn_yaw: 0.15,
        }
    }
}

/// The verdict with the measurements behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LivenessVerdict {
    pub live: bool,
    pub reason: String,
    pub jitter: f32,
    pub yaw_spread: f32,
}

/// Judges a track of landmark sets, one per frame, oldest first, with the yaw of each.
pub fn assess(track: &[(Landmarks, f32)], config: &LivenessConfig) -> LivenessVerdict {
    let verdict = |live: bool, reason: String, jitter: f32, yaw_spread: f32| LivenessVerdict {
        live,
        reason,
        jitter,
        yaw_spread,
    };
    if track.len() < config.min_frames {
        return verdict(
            false,
            format!("only {} of {} frames", track.len(), config.min_frames),
            0.0,
            0.0,
        );
    }
    let motions: Vec<f32> = track
        .windows(2)
        .map(|pair| normalised_motion(&pair[0].0, &pair[1].0))
        .collect();
    let jitter = motions.iter().sum::<f32>() / motions.len() as f32;
    let (min_yaw, max_yaw) = track
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (_, yaw)| {
            (lo.min(*yaw), hi.max(*yaw))
        });
    let yaw_spread = max_yaw - min_yaw;
    if !jitter.is_finite() || jitter < config.min_jitter {
        return verdict(
            false,
            format!(
                "the face does not move (motion {jitter:.4} < {:.4}): a still image?",
                config.min_jitter
            ),
            jitter,
            yaw_spread,
        );
    }
    if jitter > config.max_jitter {
        return verdict(
            false,
            format!(
                "the face jumps between frames (motion {jitter:.3} > {:.3})",
                config.max_jitter
            ),
            jitter,
            yaw_spread,
        );
    }
    if yaw_spread < config.min_yaw_spread {
        return verdict(
            false,
            format!(
                "no pose change (yaw spread {yaw_spread:.4} < {:.4})",
                config.min_yaw_spread
            ),
            jitter,
            yaw_spread,
        );
    }
    verdict(true, "natural motion".into(), jitter, yaw_spread)
}

/// The active check over the whole track: yaw at or beyond `-head_turn_yaw` in some frame and
/// at or beyond `+head_turn_yaw` in another. Not yet seen is "not live yet": the track goes on.
pub fn assess_head_turn(track: &[(Landmarks, f32)], config: &LivenessConfig) -> LivenessVerdict {
    let (lo, hi) = track
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (_, yaw)| {
            (lo.min(*yaw), hi.max(*yaw))
        });
    let turn = config.head_turn_yaw;
    let (left, right) = (lo <= -turn, hi >= turn);
    let reason = match (left, right) {
        (true, true) => "head turned both ways".to_string(),
        (false, false) => {
            format!("waiting for a head turn (yaw {lo:.2}..{hi:.2}, need ±{turn:.2})")
        }
        (true, false) | (false, true) => {
            format!("waiting for a head turn the other way (yaw {lo:.2}..{hi:.2}, need ±{turn:.2})")
        }
    };
    LivenessVerdict {
        live: left && right,
        reason,
        jitter: 0.0,
        yaw_spread: (hi - lo).max(0.0),
    }
}

/// Mean displacement of the five landmarks between two frames, after removing the common
/// translation, in units of the first frame's eye distance.
fn normalised_motion(a: &Landmarks, b: &Landmarks) -> f32 {
    let eye = ((a[1][0] - a[0][0]).powi(2) + (a[1][1] - a[0][1]).powi(2)).sqrt();
    if eye <= f32::EPSILON {
        return f32::NAN;
    }
    let centre = |l: &Landmarks| {
        let (sx, sy) = l.iter().fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
        (sx / 5.0, sy / 5.0)
    };
    let (ca, cb) = (centre(a), centre(b));
    let total: f32 = a
        .iter()
        .zip(b)
        .map(|(p, q)| {
            let dx = (q[0] - cb.0) - (p[0] - ca.0);
            let dy = (q[1] - cb.1) - (p[1] - ca.1);
            (dx * dx + dy * dy).sqrt()
        })
        .sum();
    total / 5.0 / eye
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::align::SFACE_TEMPLATE;

    fn moved(dx: f32, wobble: f32, yaw: f32) -> (Landmarks, f32) {
        let mut l = SFACE_TEMPLATE;
        for (i, p) in l.iter_mut().enumerate() {
            p[0] += dx + if i % 2 == 0 { wobble } else { -wobble };
            p[1] += wobble * (i as f32 - 2.0) / 2.0;
        }
        (l, yaw)
    }

    #[test]
    fn a_repeated_still_frame_is_refused() {
        let track = vec![moved(0.0, 0.0, 0.05); 8];
        let v = assess(&track, &LivenessConfig::default());
        assert!(!v.live);
        assert!(v.reason.contains("does not move"), "{}", v.reason);
    }

    #[test]
    fn a_photo_slid_sideways_without_changing_shape_is_refused() {
        // Pure translation is removed: a rigid photo moved across the frame has no jitter.
        let track: Vec<_> = (0..8).map(|i| moved(i as f32 * 3.0, 0.0, 0.05)).collect();
        assert!(!assess(&track, &LivenessConfig::default()).live);
    }

    #[test]
    fn natural_jitter_and_a_little_pose_change_pass() {
        let track: Vec<_> = (0..8)
            .map(|i| {
                moved(
                    i as f32,
                    if i % 2 == 0 { 0.6 } else { -0.6 },
                    0.02 * i as f32,
                )
            })
            .collect();
        let v = assess(&track, &LivenessConfig::default());
        assert!(v.live, "{v:?}");
    }

    #[test]
    fn too_few_frames_and_wild_jumps_are_refused() {
        let few: Vec<_> = (0..3).map(|i| moved(0.0, i as f32, 0.0)).collect();
        let v = assess(&few, &LivenessConfig::default());
        assert!(!v.live && v.reason.contains("only 3"), "{v:?}");
        let wild: Vec<_> = (0..8)
            .map(|i| moved(0.0, if i % 2 == 0 { 30.0 } else { -30.0 }, 0.1 * i as f32))
            .collect();
        let v = assess(&wild, &LivenessConfig::default());
        assert!(!v.live && v.reason.contains("jumps"), "{v:?}");
    }

    #[test]
    fn jitter_without_pose_change_is_refused() {
        let track: Vec<_> = (0..8)
            .map(|i| moved(0.0, if i % 2 == 0 { 0.6 } else { -0.6 }, 0.05))
            .collect();
        let v = assess(&track, &LivenessConfig::default());
        assert!(!v.live && v.reason.contains("no pose change"), "{v:?}");
    }

    #[test]
    fn the_active_check_needs_a_turn_to_each_side() {
        let config = LivenessConfig {
            head_turn: true,
            ..LivenessConfig::default()
        };
        let yaws = |ys: &[f32]| -> Vec<(Landmarks, f32)> {
            ys.iter().map(|&y| moved(0.0, 0.0, y)).collect()
        };
        let still = assess_head_turn(&yaws(&[0.0, 0.02, -0.01]), &config);
        assert!(!still.live && still.reason.contains("waiting"), "{still:?}");
        let one_way = assess_head_turn(&yaws(&[0.0, 0.1, 0.2, 0.1]), &config);
        assert!(
            !one_way.live && one_way.reason.contains("other way"),
            "{one_way:?}"
        );
        let both = assess_head_turn(&yaws(&[0.0, 0.2, 0.0, -0.18, 0.0]), &config);
        assert!(both.live, "{both:?}");
    }
}
