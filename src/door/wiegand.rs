//! Wiegand output to an access panel (reader mode): a credential as the 26- or 34-bit frame a
//! card reader would send — parity, facility code, card number — and the pulse train on the
//! two data lines (D0 pulses a 0, D1 a 1; both idle high). The encoder and the schedule are
//! pure; [`play`] drives any [`WiegandLines`] (the rppal pins in [`gpio`](super::gpio), a
//! recorder in tests) with a spin-wait, because a 50 µs pulse is below what `sleep` can hold.
//!
//! Not yet wired to grants: there is no per-user credential number, and no `[wiegand]` config.

use std::time::{Duration, Instant};

/// The frame formats panels accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// H10301: even parity, 8-bit facility, 16-bit card, odd parity.
    W26,
    /// 34-bit: even parity, 16-bit facility, 16-bit card, odd parity.
    W34,
}

impl Format {
    /// Bits of facility code and of card number.
    fn widths(self) -> (u32, u32) {
        match self {
            Format::W26 => (8, 16),
            Format::W34 => (16, 16),
        }
    }

    pub fn bits(self) -> usize {
        let (f, c) = self.widths();
        (f + c + 2) as usize
    }
}

/// A credential that does not fit the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value} does not fit Wiegand {bits}: at most {max}")]
pub struct WiegandError {
    pub what: &'static str,
    pub value: u32,
    pub bits: usize,
    pub max: u32,
}

/// The frame, most significant bit first as sent: `[even parity, facility…, card…, odd parity]`.
/// The leading parity bit makes the first half (with itself) even; the trailing one makes the
/// second half odd.
pub fn encode(format: Format, facility: u32, card: u32) -> Result<Vec<bool>, WiegandError> {
    let (fw, cw) = format.widths();
    for (what, value, width) in [("facility code", facility, fw), ("card number", card, cw)] {
        let max = (1u64 << width) as u32 - 1;
        if value > max {
            return Err(WiegandError {
                what,
                value,
                bits: format.bits(),
                max,
            });
        }
    }
    let mut data: Vec<bool> = (0..fw).rev().map(|i| facility >> i & 1 == 1).collect();
    data.extend((0..cw).rev().map(|i| card >> i & 1 == 1));
    let half = data.len() / 2;
    let ones = |bits: &[bool]| bits.iter().filter(|b| **b).count();
    let even = ones(&data[..half]) % 2 == 1;
    let odd = ones(&data[half..]) % 2 == 0;
    let mut frame = Vec::with_capacity(data.len() + 2);
    frame.push(even);
    frame.extend(data);
    frame.push(odd);
    Ok(frame)
}

/// Pulse width and bit period; the defaults are the common reader's 50 µs low every 2 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub pulse_us: u32,
    pub period_us: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            pulse_us: 50,
            period_us: 2_000,
        }
    }
}

impl Timing {
    /// Panels sample pulses of 20–100 µs; the line must be high again well before the next.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(20..=100).contains(&self.pulse_us) {
            problems.push(format!("pulse_us = {} must be 20 to 100", self.pulse_us));
        }
        if !(200..=25_000).contains(&self.period_us) || self.period_us < 4 * self.pulse_us {
            problems.push(format!(
                "period_us = {} must be 200 to 25000 and at least 4 pulse widths",
                self.period_us
            ));
        }
        problems
    }
}

/// One data line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// Pulsed for a 0.
    D0,
    /// Pulsed for a 1.
    D1,
}

/// A change of one line at `at_us` after the start: `low` pulls it down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub at_us: u64,
    pub line: Line,
    pub low: bool,
}

/// The edges that send `frame`: per bit, its line low at `i · period`, high `pulse` later.
pub fn schedule(frame: &[bool], timing: Timing) -> Vec<Edge> {
    frame
        .iter()
        .enumerate()
        .flat_map(|(i, bit)| {
            let line = if *bit { Line::D1 } else { Line::D0 };
            let start = i as u64 * u64::from(timing.period_us);
            [
                Edge {
                    at_us: start,
                    line,
                    low: true,
                },
                Edge {
                    at_us: start + u64::from(timing.pulse_us),
                    line,
                    low: false,
                },
            ]
        })
        .collect()
}

/// The two outputs (open-collector to the panel's pulled-up inputs, idle high).
pub trait WiegandLines {
    fn set(&mut self, line: Line, low: bool);
}

/// Plays `edges` on `lines`, each at its time after the call (a spin-wait: run it on a
/// thread of its own, never on the door's loop). Both lines are left high, whatever happens.
pub fn play(lines: &mut dyn WiegandLines, edges: &[Edge]) {
    let start = Instant::now();
    for edge in edges {
        let due = start + Duration::from_micros(edge.at_us);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        lines.set(edge.line, edge.low);
    }
    lines.set(Line::D0, false);
    lines.set(Line::D1, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what was driven, with when.
    struct Recorder {
        start: Instant,
        seen: Vec<(u64, Line, bool)>,
    }

    impl WiegandLines for Recorder {
        fn set(&mut self, line: Line, low: bool) {
            let at = self.start.elapsed().as_micros() as u64;
            self.seen.push((at, line, low));
        }
    }

    #[test]
    fn a_known_card_encodes_as_readers_send_it() {
        // Facility 1, card 1 in H10301: 0 00000001 0000000000000001 0 → parity bits: the
        // first half has one 1 (even parity 1), the second has one 1 (odd parity 0).
        let frame = encode(Format::W26, 1, 1).unwrap();
        let text: String = frame.iter().map(|b| if *b { '1' } else { '0' }).collect();
        assert_eq!(text, "10000000100000000000000010");
        assert_eq!(encode(Format::W34, 0xFFFF, 0).unwrap().len(), 34);
    }

    #[test]
    fn values_too_wide_are_refused() {
        let e = encode(Format::W26, 256, 1).unwrap_err();
        assert_eq!((e.what, e.max), ("facility code", 255));
        assert!(encode(Format::W26, 255, 65_536).is_err());
        assert!(encode(Format::W34, 65_535, 65_535).is_ok());
    }

    #[test]
    fn the_schedule_pulses_one_line_per_bit() {
        let edges = schedule(&[true, false], Timing::default());
        assert_eq!(
            edges,
            [
                Edge {
                    at_us: 0,
                    line: Line::D1,
                    low: true
                },
                Edge {
                    at_us: 50,
                    line: Line::D1,
                    low: false
                },
                Edge {
                    at_us: 2000,
                    line: Line::D0,
                    low: true
                },
                Edge {
                    at_us: 2050,
                    line: Line::D0,
                    low: false
                },
            ]
        );
        assert!(Timing::default().problems().is_empty());
        let bad = Timing {
            pulse_us: 5,
            period_us: 100,
        };
        assert_eq!(bad.problems().len(), 2);
    }

    #[test]
    fn play_keeps_the_times_and_leaves_both_lines_high() {
        let frame = encode(Format::W26, 12, 3456).unwrap();
        let edges = schedule(&frame, Timing::default());
        let mut lines = Recorder {
            start: Instant::now(),
            seen: Vec::new(),
        };
        play(&mut lines, &edges);
        assert_eq!(lines.seen.len(), edges.len() + 2);
        for (edge, (at, line, low)) in edges.iter().zip(&lines.seen) {
            assert_eq!((edge.line, edge.low), (*line, *low));
            assert!(*at >= edge.at_us, "early: {at} < {}", edge.at_us);
        }
        assert_eq!(
            lines.seen[lines.seen.len() - 2..]
                .iter()
                .filter(|s| !s.2)
                .count(),
            2
        );
    }
}
