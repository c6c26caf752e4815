//! A watchdog around any relay: an unlock that nobody ends within `max_unlock` is ended by a
//! thread of its own. The state machine always locks after `unlock_ms`; this covers the case
//! where the daemon itself is stuck (a hung runtime, a deadlock) with the door open.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{LockState, Relay, RelayError};

pub struct BoundedRelay {
    inner: Arc<Mutex<Shared>>,
    max_unlock: Duration,
}

struct Shared {
    relay: Box<dyn Relay>,
    state: LockState,
    /// Bumped on every unlock, so a watchdog only ends the unlock it was started for.
    unlocks: u64,
}

impl BoundedRelay {
    pub fn new(relay: Box<dyn Relay>, max_unlock: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Shared {
                relay,
                state: LockState::Locked,
                unlocks: 0,
            })),
            max_unlock,
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
            std::thread::spawn(move || {
                std::thread::sleep(max);
                let mut shared = inner.lock().unwrap_or_else(|p| p.into_inner());
                if shared.unlocks == unlock && shared.state == LockState::Unlocked {
                    tracing::error!(?max, "the door stayed unlocked too long: relocking");
                    shared.state = LockState::Locked;
                    if let Err(e) = shared.relay.set(LockState::Locked) {
                        tracing::error!(%e, "the watchdog could not relock the door");
                    }
                }
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::simulated::SimulatedRelay;

    #[test]
    fn an_unlock_nobody_ends_is_ended_by_the_watchdog() {
        let relay = SimulatedRelay::new(None);
        let log = relay.transitions();
        let mut bounded = BoundedRelay::new(Box::new(relay), Duration::from_millis(50));
        bounded.set(LockState::Unlocked).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            *log.lock().unwrap(),
            vec![LockState::Unlocked, LockState::Locked]
        );
    }

    #[test]
    fn a_new_unlock_is_not_cut_short_by_the_previous_watchdog() {
        let relay = SimulatedRelay::new(None);
        let log = relay.transitions();
        let mut bounded = BoundedRelay::new(Box::new(relay), Duration::from_millis(200));
        bounded.set(LockState::Unlocked).unwrap();
        std::thread::sleep(Duration::from_millis(120));
        bounded.set(LockState::Locked).unwrap();
        bounded.set(LockState::Unlocked).unwrap();
        std::thread::sleep(Duration::from_millis(120)); // the first watchdog fires here
        assert_eq!(log.lock().unwrap().last(), Some(&LockState::Unlocked));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(log.lock().unwrap().last(), Some(&LockState::Locked));
    }
}
