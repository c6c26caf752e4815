//! A watchdog around any relay: an unlock that nobody ends within `max_unlock` is ended by a
//! thread of its own. The state machine always locks after `unlock_ms`; this covers the case
//! where the daemon itself is stuck (a hung runtime, a deadlock) with the door open. Time comes
//! from a [`Clock`], so tests move it instead of racing the thread.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{LockState, Relay, RelayError};
use crate::clock::Clock;

/// How long after `unlock_ms` the watchdog relocks a door the daemon did not lock.
pub const WATCHDOG_GRACE: Duration = Duration::from_secs(1);

/// The watchdog looks at the clock at least this often while an unlock lasts.
const POLL: Duration = Duration::from_millis(20);

pub struct BoundedRelay {
    inner: Arc<Mutex<Shared>>,
    max_unlock: Duration,
    clock: Arc<dyn Clock>,
}

struct Shared {
    relay: Box<dyn Relay>,
    state: LockState,
    /// Bumped on every unlock, so a watchdog only ends the unlock it was started for.
    unlocks: u64,
}

impl BoundedRelay {
    pub fn new(relay: Box<dyn Relay>, max_unlock: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Shared {
                relay,
                state: LockState::Locked,
                unlocks: 0,
            })),
            max_unlock,
            clock,
        }
    }
}

impl Relay for BoundedRelay {
    fn set(&mut self, state: LockState) -> Result<(), RelayError> {
        let mut shared = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        shared.relay.set(state)?;
        shared.state = state;
        if state == LockState::Unlocked {
            shared.unlocks += 1;
            let (unlock, inner, max) = (shared.unlocks, self.inner.clone(), self.max_unlock);
            let clock = self.clock.clone();
            let deadline = clock.now_ms() + max.as_millis() as u64;
            std::thread::spawn(move || {
                loop {
                    let now = clock.now_ms();
                    let mut shared = inner.lock().unwrap_or_else(|p| p.into_inner());
                    if shared.unlocks != unlock || shared.state != LockState::Unlocked {
                        return; // locked, or another unlock with its own watchdog
                    }
                    if now >= deadline {
                        tracing::error!(?max, "the door stayed unlocked too long: relocking");
                        // FAIL-SECURE: the stuck unlock ends here.
                        shared.state = LockState::Locked;
                        if let Err(e) = shared.relay.set(LockState::Locked) {
                            tracing::error!(%e, "the watchdog could not relock the door");
                        }
                        return;
                    }
                    drop(shared);
                    std::thread::sleep(POLL.min(Duration::from_millis(deadline - now)));
                }
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::door::simulated::SimulatedRelay;
    use std::time::Instant;

    type Log = Arc<Mutex<Vec<LockState>>>;

    fn bounded(max_ms: u64) -> (BoundedRelay, Log, ManualClock) {
        let relay = SimulatedRelay::new(None);
        let log = relay.transitions();
        let clock = ManualClock::at(0);
        let bounded = BoundedRelay::new(
            Box::new(relay),
            Duration::from_millis(max_ms),
            Arc::new(clock.clone()),
        );
        (bounded, log, clock)
    }

    /// Waits (up to 10 s of real time, for a busy machine) until the relay was last `state`.
    fn settles_at(log: &Log, state: LockState) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if log.lock().unwrap().last() == Some(&state) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Gives the watchdog thread many chances to act (it must not: the clock says too early).
    fn let_the_watchdog_look() {
        std::thread::sleep(POLL * 5);
    }

    #[test]
    fn an_unlock_nobody_ends_is_ended_by_the_watchdog_at_its_deadline() {
        let (mut relay, log, clock) = bounded(1_000);
        relay.set(LockState::Unlocked).unwrap();
        clock.advance_ms(999);
        let_the_watchdog_look();
        assert_eq!(
            *log.lock().unwrap(),
            vec![LockState::Unlocked],
            "relocked early"
        );
        clock.advance_ms(1);
        assert!(
            settles_at(&log, LockState::Locked),
            "{:?}",
            log.lock().unwrap()
        );
        assert_eq!(
            *log.lock().unwrap(),
            vec![LockState::Unlocked, LockState::Locked]
        );
    }

    #[test]
    fn a_new_unlock_is_not_cut_short_by_the_previous_watchdog() {
        let (mut relay, log, clock) = bounded(200);
        relay.set(LockState::Unlocked).unwrap();
        clock.advance_ms(120);
        relay.set(LockState::Locked).unwrap();
        relay.set(LockState::Unlocked).unwrap(); // its deadline: 320
        clock.advance_ms(120); // 240: past the first unlock's deadline
        let_the_watchdog_look();
        assert_eq!(log.lock().unwrap().last(), Some(&LockState::Unlocked));
        clock.advance_ms(80);
        assert!(
            settles_at(&log, LockState::Locked),
            "{:?}",
            log.lock().unwrap()
        );
        assert_eq!(log.lock().unwrap().len(), 4, "{:?}", log.lock().unwrap());
    }

    #[test]
    fn a_door_locked_in_time_is_left_alone() {
        let (mut relay, log, clock) = bounded(200);
        relay.set(LockState::Unlocked).unwrap();
        relay.set(LockState::Locked).unwrap();
        clock.advance_ms(10_000);
        let_the_watchdog_look();
        assert_eq!(
            *log.lock().unwrap(),
            vec![LockState::Unlocked, LockState::Locked]
        );
    }
}
