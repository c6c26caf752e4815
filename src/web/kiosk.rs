//! `/kiosk`: the screen beside the door, no sign-in, read-only. It shows what the daemon's
//! state implies for the person in front of it — come closer, hold still, checking, welcome,
//! not recognised, door open — fed by server-sent events; names only as `web.kiosk_names` says.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures_util::Stream;
use maud::{DOCTYPE, html};
use serde::Serialize;

use super::{KioskNames, Web};
use crate::admin::{Reply, Request};
use crate::events::{DoorEvent, Prompt, UnlockOrigin};

/// What the screen shows: a state (the page's colour) and the words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Screen {
    pub state: &'static str,
    pub text: String,
}

fn screen(state: &'static str, text: &str) -> Screen {
    Screen {
        state,
        text: text.into(),
    }
}

/// The screen for a prompt.
pub fn prompt_screen(prompt: Prompt) -> Screen {
    match prompt {
        Prompt::Nobody => screen("idle", "Look at the camera"),
        Prompt::ComeCloser => screen("closer", "Come closer"),
        Prompt::HoldStill => screen("hold", "Hold still"),
        Prompt::TurnHead => screen("turn", "Turn your head slowly"),
        Prompt::Checking => screen("checking", "Checking…"),
    }
}

/// What a welcome says of `name` (the person's full name as enrolled).
pub fn welcome(names: KioskNames, name: Option<&str>) -> Screen {
    let shown = match (names, name.map(str::trim).filter(|n| !n.is_empty())) {
        (KioskNames::First, Some(name)) => name.split_whitespace().next(),
        (KioskNames::Full, Some(name)) => Some(name),
        _ => None,
    };
    match shown {
        Some(name) => screen("welcome", &format!("Welcome, {name}")),
        None => screen("welcome", "Welcome"),
    }
}

pub async fn page() -> Response {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { "facegate" }
                    link rel="stylesheet" href="/static/style.css";
                    script src="/static/kiosk.js" defer {}
                }
                body.kiosk data-state="idle" {
                    div #screen { p #prompt { "Look at the camera" } }
                }
            }
        }
        .into_string(),
    )
    .into_response()
}

/// `GET /kiosk/live`: one `screen` event per change.
pub async fn stream(
    State(web): State<Arc<Web>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = web.parts.events.subscribe();
    super::live::events(receiver, move |event| {
        let web = web.clone();
        async move {
            let shown = match event {
                DoorEvent::Prompt { prompt, .. } => prompt_screen(prompt),
                DoorEvent::Attempt { outcome, user, .. } if outcome.granted() => {
                    let name = match (&web.parts.admin, user) {
                        (Some(admin), Some(user))
                            if web.parts.config.kiosk_names != KioskNames::None =>
                        {
                            match admin.handle(Request::ShowUser { user }).await {
                                Ok(Reply::User { user, .. }) => Some(user.name),
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    welcome(web.parts.config.kiosk_names, name.as_deref())
                }
                DoorEvent::Attempt { .. } => screen("denied", "Not recognised"),
                DoorEvent::Unlocked { origin, .. } if origin != UnlockOrigin::Grant => {
                    screen("open", "Door open")
                }
                DoorEvent::Locked { .. } => screen("idle", "Look at the camera"),
                _ => return None,
            };
            let data = serde_json::to_string(&shown).ok()?;
            Some(Event::default().event("screen").data(data))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shown_as_configured() {
        let ana = Some("Ana Lima");
        assert_eq!(welcome(KioskNames::First, ana).text, "Welcome, Ana");
        assert_eq!(welcome(KioskNames::Full, ana).text, "Welcome, Ana Lima");
        assert_eq!(welcome(KioskNames::None, ana).text, "Welcome");
        assert_eq!(welcome(KioskNames::First, Some("  ")).text, "Welcome");
        assert_eq!(prompt_screen(Prompt::ComeCloser).text, "Come closer");
    }
}
