//! `facegate relock`: drive the relay to locked and exit. systemd runs it as `ExecStopPost`, so
//! the door is locked after every stop of the service — clean, crashed or killed by the
//! watchdog — even if the daemon could not lock it itself.

use std::sync::Arc;
use std::time::Duration;

use super::{Failure, GlobalArgs, load_config};
use crate::clock::SystemClock;
use crate::door::{Door, DoorIoConfig, open_hardware};

pub fn run(global: &GlobalArgs) -> Result<u8, Failure> {
    let config = load_config(global)?;
    relock(&config.relay)?;
    println!("door locked");
    Ok(0)
}

fn relock(relay: &DoorIoConfig) -> anyhow::Result<()> {
    // This never unlocks: the watchdog's bound does not matter.
    let hardware = open_hardware(relay, Duration::ZERO, Arc::new(SystemClock))?;
    // FAIL-SECURE: a Door drives its relay locked when made and again when dropped.
    drop(Door::new(hardware.relay)?);
    Ok(())
}
