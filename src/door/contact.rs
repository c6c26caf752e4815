//! The door contact, pure: from "is the door open?" samples and the lock's state, the alarms a
//! door controller raises. Forced: the door opened while the lock was locked. Held open: open
//! longer than `held_open_ms`. Each alarm is raised once; when the door closes after one, that
//! is reported too so the trail shows when it ended.

use serde::Serialize;

use super::LockState;
use crate::clock::Millis;

/// What the contact tells the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorAlarm {
    /// Opened while locked, with no grant and no exit request.
    Forced,
    /// Open for longer than allowed.
    HeldOpen { open_ms: u64 },
    /// Closed again after an alarm.
    ClosedAfterAlarm,
}

/// Follows the contact across samples.
#[derive(Debug, Clone)]
pub struct ContactMonitor {
    held_open_ms: u64,
    open_since: Option<Millis>,
    alarmed: bool,
    held_reported: bool,
    /// The last sample, `None` before the first.
    last: Option<bool>,
}

impl ContactMonitor {
    pub fn new(held_open_ms: u64) -> Self {
        Self {
            held_open_ms,
            open_since: None,
            alarmed: false,
            held_reported: false,
            last: None,
        }
    }

    /// Whether the door was open at the last sample (`None` before the first).
    pub fn is_open(&self) -> Option<bool> {
        self.last
    }

    /// One sample; returns an alarm when one starts or ends.
    pub fn observe(&mut self, open: bool, lock: LockState, now: Millis) -> Option<DoorAlarm> {
        self.last = Some(open);
        match (self.open_since, open) {
            (None, true) => {
                self.open_since = Some(now);
                (lock == LockState::Locked).then(|| {
                    self.alarmed = true;
                    DoorAlarm::Forced
                })
            }
            (Some(since), true) => {
                let open_ms = now.saturating_sub(since);
                (open_ms > self.held_open_ms && !self.held_reported).then(|| {
                    self.alarmed = true;
                    self.held_reported = true;
                    DoorAlarm::HeldOpen { open_ms }
                })
            }
            (Some(_), false) => {
                let alarmed = self.alarmed;
                *self = Self::new(self.held_open_ms);
                alarmed.then_some(DoorAlarm::ClosedAfterAlarm)
            }
            (None, false) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockState::{Locked, Unlocked};

    fn run(samples: &[(Millis, bool, LockState)]) -> Vec<(Millis, DoorAlarm)> {
        let mut monitor = ContactMonitor::new(30_000);
        samples
            .iter()
            .filter_map(|&(at, open, lock)| monitor.observe(open, lock, at).map(|a| (at, a)))
            .collect()
    }

    #[test]
    fn a_door_opened_after_a_grant_and_closed_in_time_raises_nothing() {
        let alarms = run(&[
            (0, false, Unlocked),
            (1_000, true, Unlocked),
            (5_000, true, Locked), // the relay relocks while the person walks through
            (8_000, false, Locked),
        ]);
        assert_eq!(alarms, vec![]);
    }

    #[test]
    fn a_door_opened_while_locked_is_forced_and_its_closing_is_reported() {
        let alarms = run(&[
            (0, false, Locked),
            (100, true, Locked),
            (200, true, Locked),
            (900, false, Locked),
        ]);
        assert_eq!(
            alarms,
            vec![(100, DoorAlarm::Forced), (900, DoorAlarm::ClosedAfterAlarm)]
        );
    }

    #[test]
    fn a_door_held_open_is_reported_once_past_the_limit() {
        let alarms = run(&[
            (0, true, Unlocked),
            (30_000, true, Locked),
            (30_001, true, Locked),
            (60_000, true, Locked),
            (61_000, false, Locked),
        ]);
        assert_eq!(
            alarms,
            vec![
                (30_001, DoorAlarm::HeldOpen { open_ms: 30_001 }),
                (61_000, DoorAlarm::ClosedAfterAlarm)
            ]
        );
    }
}
