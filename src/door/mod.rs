//! The lock. FAIL-SECURE: the relay is locked when a [`Door`] is made, when it is dropped
//! (shutdown, panic unwinding), and on every error path; an unlock always carries its duration
//! and the daemon's state machine locks again when it ends; [`bounded::BoundedRelay`] ends it
//! anyway if the daemon is stuck.
//!
//! Hardware: [`gpio`] on a Raspberry Pi; [`simulated`] anywhere else.

pub mod bounded;
pub mod contact;
pub mod gpio;
pub mod simulated;
pub mod wiegand;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;

/// The lock's two states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// The door's inputs, sampled a few times a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SensorReading {
    /// `None` when no door contact is wired.
    pub door_open: Option<bool>,
    pub exit_pressed: bool,
}

/// Door contact and request-to-exit button.
pub trait DoorSensors: Send {
    fn read(&mut self) -> SensorReading;
}

/// Lights and buzzer that tell the person at the door what happened.
pub trait Indicator: Send {
    fn show(&mut self, granted: bool);
}

/// No inputs wired.
pub struct NoSensors;

impl DoorSensors for NoSensors {
    fn read(&mut self) -> SensorReading {
        SensorReading::default()
    }
}

/// Indicators that only log.
pub struct LogIndicator;

impl Indicator for LogIndicator {
    fn show(&mut self, granted: bool) {
        tracing::info!(granted, "indicator");
    }
}

/// What drives the lock (config section `[relay]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DoorIoConfig {
    pub kind: RelayKind,
    /// simulated: a file that always holds the relay's state (`locked` / `unlocked`).
    pub state_file: Option<PathBuf>,
    /// gpio: the relay's BCM pin number.
    pub pin: Option<u8>,
    /// gpio: the relay board energises on a low input.
    pub active_low: bool,
    /// gpio: the door contact's pin (pull-up), if wired.
    pub contact_pin: Option<u8>,
    /// gpio: the contact reads high when the door is open (a normally-closed reed to ground).
    pub contact_open_high: bool,
    /// gpio: the request-to-exit button's pin (pull-up, pressed = low), if wired.
    pub exit_pin: Option<u8>,
    pub green_pin: Option<u8>,
    pub red_pin: Option<u8>,
    pub buzzer_pin: Option<u8>,
    /// How long indicators stay on, ms.
    pub indicator_ms: u64,
    /// The door contact may stay open this long before a held-open alarm, ms.
    pub held_open_ms: u64,
}

impl Default for DoorIoConfig {
    fn default() -> Self {
        Self {
            kind: RelayKind::Simulated,
            state_file: None,
            pin: None,
            active_low: false,
            contact_pin: None,
            contact_open_high: true,
            exit_pin: None,
            green_pin: None,
            red_pin: None,
            buzzer_pin: None,
            indicator_ms: 1_000,
            held_open_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayKind {
    #[default]
    Simulated,
    Gpio,
}

impl DoorIoConfig {
    /// Every pin named, with the key that names it.
    pub fn pins(&self) -> Vec<(&'static str, u8)> {
        [
            ("relay.pin", self.pin),
            ("relay.contact_pin", self.contact_pin),
            ("relay.exit_pin", self.exit_pin),
            ("relay.green_pin", self.green_pin),
            ("relay.red_pin", self.red_pin),
            ("relay.buzzer_pin", self.buzzer_pin),
        ]
        .into_iter()
        .filter_map(|(key, pin)| pin.map(|p| (key, p)))
        .collect()
    }
}

/// The hardware a door daemon drives.
pub struct DoorHardware {
    pub relay: Box<dyn Relay>,
    pub sensors: Box<dyn DoorSensors>,
    pub indicator: Box<dyn Indicator>,
}

/// Opens what `config` names. The relay is wrapped in a watchdog that relocks an unlock
/// [`bounded::WATCHDOG_GRACE`] after `unlock` (the daemon's `unlock_ms`) even if the daemon is
/// stuck; `clock` is the watchdog's time.
pub fn open_hardware(
    config: &DoorIoConfig,
    unlock: Duration,
    clock: Arc<dyn Clock>,
) -> Result<DoorHardware, RelayError> {
    let (relay, sensors, indicator): (Box<dyn Relay>, Box<dyn DoorSensors>, Box<dyn Indicator>) =
        match config.kind {
            RelayKind::Simulated => (
                Box::new(simulated::SimulatedRelay::new(config.state_file.clone())),
                Box::new(NoSensors),
                Box::new(LogIndicator),
            ),
            RelayKind::Gpio => {
                let pin = config
                    .pin
                    .ok_or_else(|| RelayError("relay.kind = \"gpio\" needs relay.pin".into()))?;
                (
                    Box::new(gpio::GpioRelay::open(pin, config.active_low)?),
                    Box::new(gpio::GpioSensors::open(config)?),
                    Box::new(gpio::GpioIndicators::open(config)?),
                )
            }
        };
    Ok(DoorHardware {
        relay: Box::new(bounded::BoundedRelay::new(
            relay,
            unlock + bounded::WATCHDOG_GRACE,
            clock,
        )),
        sensors,
        indicator,
    })
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
