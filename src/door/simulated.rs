//! A relay for machines without GPIO: it records every transition and, when given a path,
//! writes the current state there ("locked" / "unlocked") atomically, for a person or a test
//! to watch.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{LockState, Relay, RelayError};

pub struct SimulatedRelay {
    transitions: Arc<Mutex<Vec<LockState>>>,
    state_file: Option<PathBuf>,
}

impl SimulatedRelay {
    pub fn new(state_file: Option<PathBuf>) -> Self {
        Self {
            transitions: Arc::default(),
            state_file,
        }
    }

    /// Every state set so far, shared with the relay.
    pub fn transitions(&self) -> Arc<Mutex<Vec<LockState>>> {
        self.transitions.clone()
    }
}

impl Relay for SimulatedRelay {
    fn set(&mut self, state: LockState) -> Result<(), RelayError> {
        if let Ok(mut log) = self.transitions.lock() {
            log.push(state);
        }
        if let Some(path) = &self.state_file {
            let text = match state {
                LockState::Locked => "locked\n",
                LockState::Unlocked => "unlocked\n",
            };
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text)
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| RelayError(format!("cannot write {}: {e}", path.display())))?;
        }
        tracing::info!(?state, "simulated relay");
        Ok(())
    }
}
