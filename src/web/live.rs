//! The door's event stream for the browser: what the Door page cannot read from the monitor
//! (the contact), and the console's live activity as server-sent events. A browser that
//! falls behind misses events (the broadcast stream's rule); it never slows the door.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};

use super::Web;
use super::console::Signed;
use super::layout::time;
use crate::events::DoorEvent;

/// What the console knows of the door only from its events.
#[derive(Default)]
pub struct DoorView {
    contact: Mutex<Option<bool>>,
}

impl DoorView {
    /// Whether the door was last seen open; `None` before its first contact event.
    pub fn contact(&self) -> Option<bool> {
        *self.contact.lock().expect("door view lock")
    }
}

/// Keeps [`DoorView`] current until the stream closes.
pub async fn follow(web: Arc<Web>) {
    let mut events = web.parts.events.subscribe();
    loop {
        match events.recv().await {
            Ok(DoorEvent::Contact { open, .. }) => {
                *web.live.contact.lock().expect("door view lock") = Some(open);
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => break,
        }
    }
}

/// Server-sent events made from the door's stream by `make` (async: it may look things up);
/// events it maps to `None` are not sent.
pub fn events<F, Fut>(
    receiver: broadcast::Receiver<DoorEvent>,
    make: F,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: Fn(DoorEvent) -> Fut + Send + 'static,
    Fut: Future<Output = Option<Event>> + Send + 'static,
{
    let stream = futures_util::stream::unfold((receiver, make), |(mut rx, make)| async move {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    if let Some(sent) = make(event).await {
                        return Some((Ok(sent), (rx, make)));
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// `GET /activity/live`: every door event but the prompts, as JSON with its time in words.
pub async fn console_stream(
    State(web): State<Arc<Web>>,
    _signed: Signed,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    events(web.parts.events.subscribe(), |event| async move {
        if matches!(event, DoorEvent::Prompt { .. }) {
            return None;
        }
        let mut value = serde_json::to_value(&event).ok()?;
        let at = value.get("at_ms").and_then(|v| v.as_u64()).unwrap_or(0);
        value["time"] = time(at).into();
        Some(Event::default().event("door").data(value.to_string()))
    })
}
