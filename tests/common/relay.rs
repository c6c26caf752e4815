//! A relay that refuses to unlock (a dead driver, a broken wire), recording every state it is
//! asked for: the door must drive it locked again.

use std::sync::{Arc, Mutex};

use facegate::door::{LockState, Relay, RelayError};

/// Refuses every unlock; accepts every lock. `asked` lists what it was asked for, in order.
#[derive(Default)]
pub struct RefusingRelay {
    pub asked: Arc<Mutex<Vec<LockState>>>,
}

impl Relay for RefusingRelay {
    fn set(&mut self, state: LockState) -> Result<(), RelayError> {
        self.asked.lock().unwrap().push(state);
        match state {
            LockState::Locked => Ok(()),
            LockState::Unlocked => Err(RelayError("the relay driver did not answer".into())),
        }
    }
}
