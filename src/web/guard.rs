//! Sign-in throttling, pure over the time it is given: an account locks after
//! [`LOCKOUT_FAILURES`] wrong passwords in a row (for `lockout_ms`, the right password
//! included), and one client address gets at most [`ATTEMPTS_PER_MINUTE`] tries a minute.
//! Held in memory: a restart of the service forgets it (docs/web.md).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Wrong passwords in a row that lock an account.
pub const LOCKOUT_FAILURES: u32 = 5;
/// Sign-in tries one address may make in a minute.
pub const ATTEMPTS_PER_MINUTE: usize = 20;

/// Why a sign-in is not even tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// The account is locked until then (ms).
    Locked { until_ms: u64 },
    /// This address tries too often.
    TooFast,
}

#[derive(Default)]
struct State {
    failures: HashMap<String, (u32, Option<u64>)>,
    tries: HashMap<IpAddr, Vec<u64>>,
}

pub struct LoginGuard {
    lockout_ms: u64,
    state: Mutex<State>,
}

impl LoginGuard {
    pub fn new(lockout_ms: u64) -> Self {
        Self {
            lockout_ms,
            state: Mutex::default(),
        }
    }

    /// Whether `account` may try from `from` now; counts the try.
    pub fn admit(&self, account: &str, from: IpAddr, now_ms: u64) -> Result<(), Held> {
        let mut state = self.state.lock().expect("guard lock");
        if let Some((_, Some(until_ms))) = state.failures.get(account) {
            if now_ms < *until_ms {
                return Err(Held::Locked {
                    until_ms: *until_ms,
                });
            }
            state.failures.remove(account);
        }
        let tries = state.tries.entry(from).or_default();
        tries.retain(|at| now_ms.saturating_sub(*at) < 60_000);
        if tries.len() >= ATTEMPTS_PER_MINUTE {
            return Err(Held::TooFast);
        }
        tries.push(now_ms);
        Ok(())
    }

    /// A wrong password for `account`: `true` when this one locked it.
    pub fn failed(&self, account: &str, now_ms: u64) -> bool {
        let mut state = self.state.lock().expect("guard lock");
        let entry = state.failures.entry(account.to_string()).or_default();
        entry.0 += 1;
        if entry.0 >= LOCKOUT_FAILURES {
            entry.1 = Some(now_ms + self.lockout_ms);
            true
        } else {
            false
        }
    }

    /// The right password: the count starts again.
    pub fn succeeded(&self, account: &str) {
        self.state
            .lock()
            .expect("guard lock")
            .failures
            .remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn five_wrong_passwords_lock_the_account_for_a_while() {
        let guard = LoginGuard::new(60_000);
        for n in 1..=5 {
            assert_eq!(guard.admit("ana", HERE, n), Ok(()));
            assert_eq!(guard.failed("ana", n), n == 5);
        }
        assert_eq!(
            guard.admit("ana", HERE, 10),
            Err(Held::Locked { until_ms: 60_005 })
        );
        assert_eq!(guard.admit("bo", HERE, 10), Ok(()), "others are not locked");
        assert_eq!(guard.admit("ana", HERE, 60_005), Ok(()), "unlocked after");
        guard.failed("ana", 60_006);
        assert_eq!(guard.admit("ana", HERE, 60_007), Ok(()), "counting from 0");
    }

    #[test]
    fn a_success_resets_the_count_and_an_address_is_rate_limited() {
        let guard = LoginGuard::new(60_000);
        for _ in 0..4 {
            guard.failed("ana", 1);
        }
        guard.succeeded("ana");
        assert!(!guard.failed("ana", 2));
        let guard = LoginGuard::new(60_000);
        for n in 0..ATTEMPTS_PER_MINUTE as u64 {
            assert_eq!(guard.admit(&format!("u{n}"), HERE, n), Ok(()));
        }
        assert_eq!(guard.admit("x", HERE, 100), Err(Held::TooFast));
        assert_eq!(guard.admit("x", HERE, 60_100), Ok(()));
    }
}
