//! The Wiegand encoder against a decoder written here from the format's description, not from
//! the encoder: what a panel's input would do with the two lines — read a bit at each falling
//! edge (D0 a 0, D1 a 1), check the pulse width and period, check both parity bits, and take
//! the facility code and card number apart.

use facegate::door::wiegand::{Edge, Format, Line, Timing, encode, schedule};

#[derive(Debug, PartialEq)]
struct Read {
    facility: u32,
    card: u32,
}

/// A panel's view of `edges`, or why it would reject them.
fn decode(edges: &[Edge], bits: usize, timing: Timing) -> Result<Read, String> {
    let mut falls = Vec::new();
    let mut low_since: [Option<u64>; 2] = [None, None];
    for e in edges {
        let i = usize::from(e.line == Line::D1);
        match (e.low, low_since[i]) {
            (true, None) => {
                if low_since[1 - i].is_some() {
                    return Err("both lines low at once".into());
                }
                low_since[i] = Some(e.at_us);
                falls.push((e.at_us, i == 1));
            }
            (false, Some(since)) => {
                let width = e.at_us - since;
                if !(20..=100).contains(&width) {
                    return Err(format!("pulse of {width} µs"));
                }
                low_since[i] = None;
            }
            _ => return Err("an edge that does not change the line".into()),
        }
    }
    if falls.len() != bits {
        return Err(format!("{} bits, expected {bits}", falls.len()));
    }
    for pair in falls.windows(2) {
        if pair[1].0 - pair[0].0 != u64::from(timing.period_us) {
            return Err(format!("bit period {} µs", pair[1].0 - pair[0].0));
        }
    }
    let b: Vec<bool> = falls.iter().map(|f| f.1).collect();
    // Parity halves: the first bit with the first half of the data (even), the last bit with
    // the second half (odd).
    let half = bits / 2;
    if b[..half].iter().filter(|x| **x).count() % 2 != 0 {
        return Err("even parity".into());
    }
    if b[half..].iter().filter(|x| **x).count() % 2 != 1 {
        return Err("odd parity".into());
    }
    let number = |bits: &[bool]| bits.iter().fold(0u32, |n, bit| n << 1 | u32::from(*bit));
    let facility_bits = if bits == 26 { 8 } else { 16 };
    Ok(Read {
        facility: number(&b[1..1 + facility_bits]),
        card: number(&b[1 + facility_bits..bits - 1]),
    })
}

#[test]
fn every_frame_decodes_to_what_was_sent() {
    let timing = Timing::default();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2_000 {
        let r = next();
        let (facility, card) = ((r & 0xFF) as u32, (r >> 8 & 0xFFFF) as u32);
        let edges = schedule(&encode(Format::W26, facility, card).unwrap(), timing);
        assert_eq!(decode(&edges, 26, timing), Ok(Read { facility, card }));
        let facility = (r >> 24 & 0xFFFF) as u32;
        let edges = schedule(&encode(Format::W34, facility, card).unwrap(), timing);
        assert_eq!(decode(&edges, 34, timing), Ok(Read { facility, card }));
    }
    for (facility, card) in [(0, 0), (255, 65_535), (1, 1), (128, 32_768)] {
        let edges = schedule(&encode(Format::W26, facility, card).unwrap(), timing);
        assert_eq!(decode(&edges, 26, timing), Ok(Read { facility, card }));
    }
}

#[test]
fn a_flipped_bit_fails_parity_and_other_timings_hold() {
    let timing = Timing {
        pulse_us: 100,
        period_us: 1_000,
    };
    let mut frame = encode(Format::W26, 42, 1234).unwrap();
    let edges = schedule(&frame, timing);
    assert_eq!(
        decode(&edges, 26, timing),
        Ok(Read {
            facility: 42,
            card: 1234
        })
    );
    for i in 0..26 {
        frame[i] = !frame[i];
        let read = decode(&schedule(&frame, timing), 26, timing);
        assert!(read.unwrap_err().contains("parity"), "bit {i}");
        frame[i] = !frame[i];
    }
}
