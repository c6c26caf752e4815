//! Signed-in sessions, in memory: a random 256-bit token in an HttpOnly, SameSite=Strict cookie
//! names the account, its role and the session's CSRF token; a session unused for the idle
//! timeout is gone. A restart signs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;

use super::Role;

/// The session cookie's name.
pub const COOKIE: &str = "facegate_session";
/// The sign-in form's own CSRF cookie (before there is a session).
pub const LOGIN_COOKIE: &str = "facegate_login";

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub account: String,
    pub role: Role,
    /// Every form of this session carries it.
    pub csrf: String,
}

pub struct Sessions {
    idle_ms: u64,
    live: Mutex<HashMap<String, (Session, u64)>>,
}

impl Sessions {
    pub fn new(idle_ms: u64) -> Self {
        Self {
            idle_ms,
            live: Mutex::default(),
        }
    }

    /// A new session for `account`; its token.
    pub fn open(&self, account: &str, role: Role, now_ms: u64) -> String {
        let token = random_token();
        let session = Session {
            account: account.into(),
            role,
            csrf: random_token(),
        };
        let mut live = self.live.lock().expect("sessions lock");
        live.retain(|_, (_, last)| now_ms.saturating_sub(*last) < self.idle_ms);
        live.insert(token.clone(), (session, now_ms));
        token
    }

    /// The session of `token`, if it is still alive; using it keeps it alive.
    pub fn touch(&self, token: &str, now_ms: u64) -> Option<Session> {
        let mut live = self.live.lock().expect("sessions lock");
        let (session, last) = live.get_mut(token)?;
        if now_ms.saturating_sub(*last) >= self.idle_ms {
            live.remove(token);
            return None;
        }
        *last = now_ms;
        Some(session.clone())
    }

    pub fn close(&self, token: &str) {
        self.live.lock().expect("sessions lock").remove(token);
    }
}

/// 32 bytes from the OS, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The value of cookie `name` in a `Cookie:` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_idle_and_on_close() {
        let sessions = Sessions::new(1_000);
        let token = sessions.open("ana", Role::Viewer, 0);
        assert_eq!(sessions.touch(&token, 999).unwrap().role, Role::Viewer);
        assert!(sessions.touch(&token, 1_998).is_some(), "kept alive by use");
        assert!(sessions.touch(&token, 2_998).is_none(), "idle too long");
        let token = sessions.open("ana", Role::Admin, 0);
        sessions.close(&token);
        assert!(sessions.touch(&token, 1).is_none());
        assert!(sessions.touch("guess", 1).is_none());
    }

    #[test]
    fn tokens_and_cookies() {
        assert_ne!(random_token(), random_token());
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("", ""));
        assert_eq!(cookie("a=1; facegate_session=xyz", COOKIE), Some("xyz"));
        assert_eq!(cookie("facegate_sessionx=1", COOKIE), None);
    }
}
