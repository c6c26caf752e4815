//! The track: the good frames of the face being followed, which must all be one person.
//!
//! Each frame is embedded as it arrives. A frame whose face is not the track's person (its
//! embedding too far from the mean of the track's frames) ends the track and starts a new one
//! with that frame: a victim's photo held up, then the attacker's own live face, is two tracks,
//! and neither is judged on the other's frames. Liveness judges the newest frames, and the frames
//! sent for authentication are chosen among exactly those.

use std::collections::VecDeque;

use image::RgbImage;

use crate::daemon::liveness::LivenessConfig;
use crate::vision::detect::Landmarks;
use crate::vision::embed::EMBEDDING_DIM;
use crate::vision::{Embedding, Face};

/// A track remembers this many frames (10 s at 10 frames a second) for the head-turn check.
pub const MAX_TRACK_FRAMES: usize = 100;

/// One good frame.
#[derive(Debug, Clone)]
pub struct TrackedFrame {
    /// Kept for the newest frames only (the ones that may be sent).
    pub image: Option<RgbImage>,
    pub face: Face,
    pub embedding: Embedding,
    pub yaw: f32,
}

impl TrackedFrame {
    /// Which frames are worth sending: a confident detection of a large face.
    pub fn rank(&self) -> f32 {
        self.face.score * self.face.bbox.width.min(self.face.bbox.height)
    }
}

/// Whether a frame continued the track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// The same person as the track's earlier frames (or the track's first frame).
    Same,
    /// Someone else: the track restarted from this frame.
    NewPerson,
}

/// The frames of one person, newest last.
pub struct Track {
    frames: VecDeque<TrackedFrame>,
    /// Sum of the embeddings in `frames`, for their mean.
    sum: [f32; EMBEDDING_DIM],
    /// How many of the newest frames keep their image and are judged by liveness.
    window: usize,
    /// The cosine to the track's mean below which a face is someone else.
    same_person: f32,
}

impl Track {
    /// A track whose newest `window` frames keep their images, cut when a face's cosine to the
    /// track's mean drops below `same_person`.
    pub fn new(window: usize, same_person: f32) -> Self {
        Self {
            frames: VecDeque::new(),
            sum: [0.0; EMBEDDING_DIM],
            window: window.max(1),
            same_person,
        }
    }

    /// The window liveness and authentication need: liveness' frames, and at least as many
    /// as an attempt sends.
    pub fn window_for(liveness: &LivenessConfig, frames_sent: usize) -> usize {
        liveness.min_frames.max(frames_sent)
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn clear(&mut self) {
        self.frames.clear();
        self.sum = [0.0; EMBEDDING_DIM];
    }

    /// Adds a frame, restarting the track from it when it shows someone else.
    pub fn push(&mut self, frame: TrackedFrame) -> Continuity {
        let continuity = match self.mean() {
            Some(mean) if mean.cosine(&frame.embedding) < self.same_person => {
                self.clear();
                Continuity::NewPerson
            }
            _ => Continuity::Same,
        };
        for (s, v) in self.sum.iter_mut().zip(frame.embedding.as_slice()) {
            *s += v;
        }
        self.frames.push_back(frame);
        if self.frames.len() > MAX_TRACK_FRAMES
            && let Some(old) = self.frames.pop_front()
        {
            for (s, v) in self.sum.iter_mut().zip(old.embedding.as_slice()) {
                *s -= v;
            }
        }
        // Only the newest frames may be sent: older ones let go of their images.
        let keep_from = self.frames.len().saturating_sub(self.window);
        for old in self.frames.iter_mut().take(keep_from) {
            old.image = None;
        }
        continuity
    }

    /// The normalised mean of the track's embeddings.
    fn mean(&self) -> Option<Embedding> {
        if self.frames.is_empty() {
            return None;
        }
        Embedding::from_raw(&self.sum)
    }

    /// Landmarks and yaw of the newest `n` frames, oldest first.
    pub fn newest(&self, n: usize) -> Vec<(Landmarks, f32)> {
        let from = self.frames.len().saturating_sub(n);
        self.frames
            .iter()
            .skip(from)
            .map(|f| (f.face.landmarks, f.yaw))
            .collect()
    }

    /// Landmarks and yaw of every frame, oldest first.
    pub fn all(&self) -> Vec<(Landmarks, f32)> {
        self.newest(self.frames.len())
    }

    /// The `n` best-ranked frames among the newest `window` (those liveness judged), best first.
    pub fn best(&self, n: usize) -> Vec<&TrackedFrame> {
        let from = self.frames.len().saturating_sub(self.window);
        let mut frames: Vec<&TrackedFrame> = self
            .frames
            .iter()
            .skip(from)
            .filter(|f| f.image.is_some())
            .collect();
        frames.sort_by(|a, b| b.rank().total_cmp(&a.rank()));
        frames.truncate(n);
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::align::SFACE_TEMPLATE;
    use crate::vision::detect::BoundingBox;

    fn person(i: usize, wobble: f32) -> Embedding {
        let mut v = [0.01; EMBEDDING_DIM];
        v[i] = 1.0;
        v[(i + 1) % EMBEDDING_DIM] = wobble;
        Embedding::from_raw(&v).unwrap()
    }

    fn frame(embedding: Embedding, size: f32) -> TrackedFrame {
        TrackedFrame {
            image: Some(RgbImage::new(2, 2)),
            face: Face {
                bbox: BoundingBox {
                    x: 0.0,
                    y: 0.0,
                    width: size,
                    height: size,
                },
                score: 0.9,
                landmarks: SFACE_TEMPLATE,
            },
            embedding,
            yaw: 0.0,
        }
    }

    #[test]
    fn another_person_restarts_the_track() {
        let mut t = Track::new(5, 0.5);
        for w in [0.0, 0.1, 0.2, 0.1] {
            assert_eq!(t.push(frame(person(0, w), 100.0)), Continuity::Same);
        }
        assert_eq!(t.len(), 4);
        assert_eq!(t.push(frame(person(7, 0.0), 100.0)), Continuity::NewPerson);
        assert_eq!(t.len(), 1, "the victim's frames are gone");
        assert_eq!(t.push(frame(person(7, 0.1), 100.0)), Continuity::Same);
    }

    #[test]
    fn only_the_newest_frames_keep_images_and_are_sent() {
        let mut t = Track::new(3, 0.5);
        // The largest face comes first, then five smaller ones: it has left the window.
        t.push(frame(person(0, 0.0), 300.0));
        for size in [100.0, 110.0, 120.0, 130.0, 140.0] {
            t.push(frame(person(0, 0.0), size));
        }
        let best: Vec<f32> = t.best(2).iter().map(|f| f.face.bbox.width).collect();
        assert_eq!(best, vec![140.0, 130.0]);
        assert_eq!(t.frames.iter().filter(|f| f.image.is_some()).count(), 3);
        assert_eq!(t.newest(3).len(), 3);
        assert_eq!(t.all().len(), 6);
    }

    #[test]
    fn the_track_is_bounded() {
        let mut t = Track::new(5, 0.5);
        for _ in 0..MAX_TRACK_FRAMES + 20 {
            t.push(frame(person(0, 0.0), 100.0));
        }
        assert_eq!(t.len(), MAX_TRACK_FRAMES);
        assert!(t.mean().unwrap().cosine(&person(0, 0.0)) > 0.999);
    }
}
