//! Raspberry Pi GPIO through `rppal`: the lock relay, the door contact, the request-to-exit
//! button and the indicator outputs. Thin on purpose: the levels each state maps to are pure
//! functions tested here; everything that decides lives in the daemon.
//!
//! The relay pin is not reset when facegate exits: it is left driven at the locked level, so
//! the door stays locked between a stop and the next start (`ExecStopPost` relocks as well).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rppal::gpio::{Gpio, InputPin, Level, OutputPin};

use super::{DoorIoConfig, DoorSensors, Indicator, LockState, Relay, RelayError, SensorReading};

fn gpio_error(what: &str, pin: u8, e: rppal::gpio::Error) -> RelayError {
    RelayError(format!(
        "GPIO {pin} ({what}): {e} (is the user in the gpio group, and is /dev/gpiomem present?)"
    ))
}

/// Checks that the GPIO chip can be opened and every configured pin is available, without
/// driving any output (for `facegate doctor`). Returns the board and the pin map.
pub fn probe(config: &DoorIoConfig) -> Result<String, RelayError> {
    let first = config.pin.unwrap_or(0);
    let gpio = Gpio::new().map_err(|e| gpio_error("GPIO chip", first, e))?;
    let mut used = Vec::new();
    for (key, pin) in config.pins() {
        gpio.get(pin).map_err(|e| gpio_error(key, pin, e))?;
        used.push(format!("{key} = {pin}"));
    }
    let board = rppal::system::DeviceInfo::new()
        .map(|info| info.model().to_string())
        .unwrap_or_else(|_| "unknown board".into());
    Ok(format!("{board}; {}", used.join(", ")))
}

/// The level that puts the relay in `state`: energised means unlocked (a fail-secure strike
/// locks when power is lost); `active_low` relay boards energise on a low input.
pub fn relay_level(state: LockState, active_low: bool) -> Level {
    let energised = state == LockState::Unlocked;
    if energised != active_low {
        Level::High
    } else {
        Level::Low
    }
}

/// The relay output.
pub struct GpioRelay {
    pin: OutputPin,
    active_low: bool,
}

impl GpioRelay {
    /// Claims `pin` and drives it to the locked level at once.
    pub fn open(pin: u8, active_low: bool) -> Result<Self, RelayError> {
        let gpio = Gpio::new().map_err(|e| gpio_error("relay", pin, e))?;
        let pin_handle = gpio.get(pin).map_err(|e| gpio_error("relay", pin, e))?;
        let mut output = match relay_level(LockState::Locked, active_low) {
            Level::High => pin_handle.into_output_high(),
            Level::Low => pin_handle.into_output_low(),
        };
        output.set_reset_on_drop(false);
        Ok(Self {
            pin: output,
            active_low,
        })
    }
}

impl Relay for GpioRelay {
    fn set(&mut self, state: LockState) -> Result<(), RelayError> {
        self.pin.write(relay_level(state, self.active_low));
        Ok(())
    }
}

/// The door contact and the exit button, both on inputs with the internal pull-up: a
/// normally-closed reed switch to ground reads low while the door is shut, a push button to
/// ground reads low while pressed.
pub struct GpioSensors {
    contact: Option<(InputPin, Level)>,
    exit: Option<InputPin>,
}

impl GpioSensors {
    pub fn open(config: &DoorIoConfig) -> Result<Self, RelayError> {
        let input = |what, pin: u8| -> Result<InputPin, RelayError> {
            let gpio = Gpio::new().map_err(|e| gpio_error(what, pin, e))?;
            Ok(gpio
                .get(pin)
                .map_err(|e| gpio_error(what, pin, e))?
                .into_input_pullup())
        };
        let open_level = if config.contact_open_high {
            Level::High
        } else {
            Level::Low
        };
        Ok(Self {
            contact: config
                .contact_pin
                .map(|pin| input("door contact", pin).map(|p| (p, open_level)))
                .transpose()?,
            exit: config
                .exit_pin
                .map(|pin| input("exit button", pin))
                .transpose()?,
        })
    }
}

impl DoorSensors for GpioSensors {
    fn read(&mut self) -> SensorReading {
        SensorReading {
            door_open: self.contact.as_ref().map(|(pin, open)| pin.read() == *open),
            exit_pressed: self.exit.as_ref().is_some_and(|pin| pin.is_low()),
        }
    }
}

/// Green and red lights and a buzzer, each optional, pulsed on a thread so the daemon never
/// waits for them.
pub struct GpioIndicators {
    green: Option<Arc<Mutex<OutputPin>>>,
    red: Option<Arc<Mutex<OutputPin>>>,
    buzzer: Option<Arc<Mutex<OutputPin>>>,
    pulse: Duration,
}

impl GpioIndicators {
    pub fn open(config: &DoorIoConfig) -> Result<Self, RelayError> {
        let output = |what, pin: Option<u8>| -> Result<Option<Arc<Mutex<OutputPin>>>, RelayError> {
            let Some(pin) = pin else { return Ok(None) };
            let gpio = Gpio::new().map_err(|e| gpio_error(what, pin, e))?;
            let out = gpio
                .get(pin)
                .map_err(|e| gpio_error(what, pin, e))?
                .into_output_low();
            Ok(Some(Arc::new(Mutex::new(out))))
        };
        Ok(Self {
            green: output("green light", config.green_pin)?,
            red: output("red light", config.red_pin)?,
            buzzer: output("buzzer", config.buzzer_pin)?,
            pulse: Duration::from_millis(config.indicator_ms),
        })
    }
}

impl Indicator for GpioIndicators {
    fn show(&mut self, granted: bool) {
        let light = if granted { &self.green } else { &self.red };
        for pin in [light, &self.buzzer].into_iter().flatten() {
            let (pin, pulse) = (pin.clone(), self.pulse);
            std::thread::spawn(move || {
                pin.lock().unwrap_or_else(|p| p.into_inner()).set_high();
                std::thread::sleep(pulse);
                pin.lock().unwrap_or_else(|p| p.into_inner()).set_low();
            });
        }
    }
}

/// Wiegand's two data outputs (reader mode): driven high (idle) when claimed, pulled low for
/// each pulse by [`wiegand::play`](super::wiegand::play).
pub struct GpioWiegand {
    d0: OutputPin,
    d1: OutputPin,
}

/// The level of a Wiegand line: the panel's input is pulled up, a pulse pulls it low.
pub fn wiegand_level(low: bool) -> Level {
    if low { Level::Low } else { Level::High }
}

impl GpioWiegand {
    /// Claims `d0` and `d1` and drives both idle (high) at once.
    pub fn open(d0: u8, d1: u8) -> Result<Self, RelayError> {
        let gpio = Gpio::new().map_err(|e| gpio_error("wiegand", d0, e))?;
        let claim = |pin: u8, what: &str| -> Result<OutputPin, RelayError> {
            let mut out = gpio
                .get(pin)
                .map_err(|e| gpio_error(what, pin, e))?
                .into_output_high();
            out.set_reset_on_drop(false);
            Ok(out)
        };
        Ok(Self {
            d0: claim(d0, "wiegand D0")?,
            d1: claim(d1, "wiegand D1")?,
        })
    }
}

impl super::wiegand::WiegandLines for GpioWiegand {
    fn set(&mut self, line: super::wiegand::Line, low: bool) {
        let pin = match line {
            super::wiegand::Line::D0 => &mut self.d0,
            super::wiegand::Line::D1 => &mut self.d1,
        };
        pin.write(wiegand_level(low));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_is_de_energised_for_either_board_polarity() {
        assert_eq!(relay_level(LockState::Locked, false), Level::Low);
        assert_eq!(relay_level(LockState::Unlocked, false), Level::High);
        assert_eq!(relay_level(LockState::Locked, true), Level::High);
        assert_eq!(relay_level(LockState::Unlocked, true), Level::Low);
    }

    #[test]
    fn wiegand_pulses_pull_the_line_low_and_fail_cleanly_without_hardware() {
        assert_eq!(wiegand_level(true), Level::Low);
        assert_eq!(wiegand_level(false), Level::High);
        if std::path::Path::new("/dev/gpiomem").exists() {
            return; // a Pi: claiming pins here would drive them
        }
        let Err(e) = GpioWiegand::open(23, 24) else {
            panic!("no GPIO here, yet the pins opened");
        };
        assert!(e.to_string().contains("gpio"), "{e}");
    }

    #[test]
    fn without_gpio_hardware_opening_fails_with_a_hint_not_a_panic() {
        // This machine has no /dev/gpiomem; on a Pi the call succeeds instead.
        if std::path::Path::new("/dev/gpiomem").exists() {
            return;
        }
        let err = GpioRelay::open(17, false).err().expect("no GPIO here");
        assert!(
            err.0.contains("GPIO 17") && err.0.contains("gpio group"),
            "{err}"
        );
    }
}
