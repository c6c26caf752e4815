//! The lock. FAIL-SECURE: the relay is locked when a [`Door`] is made, when it is dropped
//! (shutdown, panic unwinding), and on every error path; an unlock always carries its duration
//! and the daemon's state machine locks again when it ends.

pub mod simulated;

use serde::Serialize;

/// The lock's two states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LockState {
    Locked,
    Unlocked,
}

/// Why the relay could not be driven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("relay: {0}")]
pub struct RelayError(pub String);

/// A relay output.
pub trait Relay: Send {
    fn set(&mut self, state: LockState) -> Result<(), RelayError>;
}

/// Owns the relay and keeps it locked unless told otherwise.
pub struct Door {
    relay: Box<dyn Relay>,
    state: LockState,
}

impl Door {
    /// Takes the relay and locks it at once.
    pub fn new(mut relay: Box<dyn Relay>) -> Result<Self, RelayError> {
        // FAIL-SECURE: locked at start.
        relay.set(LockState::Locked)?;
        Ok(Self {
            relay,
            state: LockState::Locked,
        })
    }

    pub fn state(&self) -> LockState {
        self.state
    }

    /// FAIL-SECURE: if the relay refuses to unlock, it is driven to locked again.
    pub fn unlock(&mut self) -> Result<(), RelayError> {
        match self.relay.set(LockState::Unlocked) {
            Ok(()) => {
                self.state = LockState::Unlocked;
                Ok(())
            }
            Err(e) => {
                let _ = self.lock();
                Err(e)
            }
        }
    }

    pub fn lock(&mut self) -> Result<(), RelayError> {
        self.state = LockState::Locked;
        self.relay.set(LockState::Locked)
    }
}

impl Drop for Door {
    fn drop(&mut self) {
        // FAIL-SECURE: locked on shutdown and when unwinding from a panic.
        if let Err(e) = self.lock() {
            tracing::error!(%e, "could not lock the relay while shutting down");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::simulated::SimulatedRelay;
    use super::*;

    #[test]
    fn the_door_is_locked_at_start_and_on_drop() {
        let relay = SimulatedRelay::new(None);
        let log = relay.transitions();
        {
            let mut door = Door::new(Box::new(relay)).unwrap();
            door.unlock().unwrap();
            assert_eq!(door.state(), LockState::Unlocked);
        }
        assert_eq!(
            *log.lock().unwrap(),
            vec![LockState::Locked, LockState::Unlocked, LockState::Locked]
        );
    }

    #[test]
    fn the_door_locks_when_a_panic_unwinds_through_it() {
        let relay = SimulatedRelay::new(None);
        let log = relay.transitions();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut door = Door::new(Box::new(relay)).unwrap();
            door.unlock().unwrap();
            panic!("something broke while the door was open");
        }));
        assert!(result.is_err());
        assert_eq!(log.lock().unwrap().last(), Some(&LockState::Locked));
    }
}
