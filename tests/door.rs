//! The lock, fail-secure: a relay that refuses to unlock is driven locked again, and the relay
//! watchdog that `facegate run` wires (`open_hardware`) relocks a stuck unlock one second after
//! `unlock_ms`, on an injected clock.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::relay::RefusingRelay;
use facegate::clock::ManualClock;
use facegate::door::bounded::{BoundedRelay, WATCHDOG_GRACE};
use facegate::door::{Door, DoorIoConfig, LockState, open_hardware};

#[test]
fn a_relay_that_refuses_to_unlock_is_driven_locked_again() {
    let relay = RefusingRelay::default();
    let asked = relay.asked.clone();
    let mut door = Door::new(Box::new(relay)).unwrap();
    let err = door.unlock().unwrap_err();
    assert!(err.to_string().contains("did not answer"), "{err}");
    assert_eq!(door.state(), LockState::Locked);
    assert_eq!(
        *asked.lock().unwrap(),
        vec![LockState::Locked, LockState::Unlocked, LockState::Locked]
    );
    // Behind the watchdog (as `facegate run` drives it) the same holds.
    let relay = RefusingRelay::default();
    let asked = relay.asked.clone();
    let bounded = BoundedRelay::new(
        Box::new(relay),
        Duration::from_secs(6),
        Arc::new(ManualClock::at(0)),
    );
    let mut door = Door::new(Box::new(bounded)).unwrap();
    assert!(door.unlock().is_err());
    assert_eq!(door.state(), LockState::Locked);
    assert_eq!(asked.lock().unwrap().last(), Some(&LockState::Locked));
}

/// The simulated relay's state file, as a person (or this test) watches it.
fn state(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

#[test]
fn the_wired_watchdog_relocks_a_stuck_unlock_one_second_after_unlock_ms() {
    assert_eq!(WATCHDOG_GRACE, Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay-state");
    let config = DoorIoConfig {
        state_file: Some(file.clone()),
        ..DoorIoConfig::default()
    };
    let clock = ManualClock::at(1_800_000_000_000);
    let unlock_ms = 5_000;
    let mut hardware = open_hardware(
        &config,
        Duration::from_millis(unlock_ms),
        Arc::new(clock.clone()),
    )
    .unwrap();
    // The daemon opens the door and then hangs: nobody locks it.
    hardware.relay.set(LockState::Unlocked).unwrap();
    clock.advance_ms(unlock_ms + 999);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(state(&file), "unlocked", "relocked before unlock_ms + 1 s");
    clock.advance_ms(1);
    let started = Instant::now();
    while state(&file) != "locked" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the watchdog never relocked"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
