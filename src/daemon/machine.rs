//! The door's state machine, pure: `step(state, event, now, counters, config) -> (state,
//! commands)`, no I/O. The daemon around it turns camera frames and backend answers into events
//! and carries out the commands; tests drive it as tables.
//!
//! idle → tracking (a face passes the quality gate) → authenticating → granted (relay open for
//! `unlock_ms`) / denied (cooldown) → idle. One attempt at a time; while the door is open and
//! for `rearm_ms` after, faces are not re-authenticated. A track that liveness refuses is a
//! denied attempt like any other. Consecutive denials make the cooldown longer, step by step
//! (`deny_cooldowns_ms`); a grant starts the steps over.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;

/// Timings (config section `[daemon]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MachineConfig {
    /// How long the relay stays open on a grant.
    pub unlock_ms: u64,
    /// After the first, second, … consecutive denial, faces are ignored this long (the last
    /// step repeats).
    pub deny_cooldowns_ms: Vec<u64>,
    /// After the door locks again, faces are ignored this long (the same person walking in).
    pub rearm_ms: u64,
    /// A track with no usable face for this long is dropped.
    pub track_timeout_ms: u64,
    /// An attempt with no answer for this long is abandoned (and the door stays locked).
    pub auth_timeout_ms: u64,
}

impl Default for MachineConfig {
    fn default() -> Self {
        Self {
            unlock_ms: 5_000,
            deny_cooldowns_ms: vec![3_000, 10_000, 30_000, 120_000],
            rearm_ms: 2_000,
            track_timeout_ms: 1_500,
            auth_timeout_ms: 10_000,
        }
    }
}

/// Where the door stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Idle,
    /// A face is being followed; `good_frames` passed the quality gate.
    Tracking {
        since: Millis,
        last_face: Millis,
        good_frames: usize,
    },
    /// An attempt is with the backend.
    Authenticating {
        attempt: u64,
        since: Millis,
    },
    /// The relay is open until `until`.
    Granted {
        until: Millis,
    },
    /// Faces are ignored until `until`.
    Cooldown {
        until: Millis,
    },
}

/// What liveness says of the track so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Alive: authenticate.
    Live,
    /// Not shown yet; the track goes on.
    NotYet,
    /// The track had its chance and did not look alive: a denied attempt.
    Refused,
}

/// Counters the machine keeps across states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Attempts so far (each has its number).
    pub attempts: u64,
    /// Denials since the last grant.
    pub denials: usize,
}

/// What the daemon reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A frame was analysed: no face, a face that fails the gate, or a good one.
    Frame { face: FaceSeen },
    /// The tracker's verdict on liveness.
    LivenessChecked { verdict: Liveness },
    /// The backend answered attempt `attempt`.
    Decided { attempt: u64, granted: bool },
    /// The request-to-exit button was pressed, or an operator opened the door from afar: open
    /// without authentication, for `unlock_ms` like a grant.
    ExitRequested,
    /// An operator asked to lock now.
    LockRequested,
    /// Time passed (the daemon ticks a few times a second).
    Tick,
}

/// The gist of one analysed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceSeen {
    None,
    Unusable,
    Good,
}

/// What the daemon must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Check liveness over the track so far.
    CheckLiveness,
    /// Forget the current track.
    ResetTrack,
    /// Authenticate the best frame of the track as attempt `attempt`.
    Authenticate { attempt: u64 },
    /// FAIL-SECURE: open for exactly `for_ms`, then lock.
    Unlock { for_ms: u64 },
    /// FAIL-SECURE: lock now.
    Lock,
    /// Signal the outcome (LEDs, buzzer).
    Indicate { granted: bool },
}

/// One transition.
pub fn step(
    state: &State,
    event: &Event,
    now: Millis,
    counters: &mut Counters,
    config: &MachineConfig,
) -> (State, Vec<Command>) {
    use Command as C;
    match (state, event) {
        // Timers.
        (State::Granted { until }, Event::Tick) if now >= *until => (
            State::Cooldown {
                until: now + config.rearm_ms,
            },
            vec![C::Lock],
        ),
        (State::Cooldown { until }, Event::Tick) if now >= *until => {
            (State::Idle, vec![C::ResetTrack])
        }
        (
            State::Tracking { last_face, .. },
            Event::Tick
            | Event::Frame {
                face: FaceSeen::None,
            },
        ) if now.saturating_sub(*last_face) > config.track_timeout_ms => {
            (State::Idle, vec![C::ResetTrack])
        }
        (State::Authenticating { since, .. }, Event::Tick)
            if now.saturating_sub(*since) > config.auth_timeout_ms =>
        {
            deny(now, counters, config)
        }

        // Leaving is always allowed; an attempt in flight is abandoned (its answer is stale).
        (_, Event::ExitRequested) => (
            State::Granted {
                until: now + config.unlock_ms,
            },
            vec![
                C::Unlock {
                    for_ms: config.unlock_ms,
                },
                C::ResetTrack,
            ],
        ),

        // An operator's lock ends an unlock early; otherwise it is already locked.
        (State::Granted { .. }, Event::LockRequested) => (
            State::Cooldown {
                until: now + config.rearm_ms,
            },
            vec![C::Lock, C::ResetTrack],
        ),
        (state, Event::LockRequested) => (state.clone(), vec![C::Lock]),

        // Frames.
        (
            State::Idle,
            Event::Frame {
                face: FaceSeen::Good,
            },
        ) => (
            State::Tracking {
                since: now,
                last_face: now,
                good_frames: 1,
            },
            vec![C::CheckLiveness],
        ),
        (
            State::Tracking {
                since, good_frames, ..
            },
            Event::Frame {
                face: FaceSeen::Good,
            },
        ) => (
            State::Tracking {
                since: *since,
                last_face: now,
                good_frames: good_frames + 1,
            },
            vec![C::CheckLiveness],
        ),
        (
            State::Tracking {
                since, good_frames, ..
            },
            Event::Frame {
                face: FaceSeen::Unusable,
            },
        ) => (
            State::Tracking {
                since: *since,
                last_face: now,
                good_frames: *good_frames,
            },
            vec![],
        ),

        // Liveness: only a live track leads to an attempt; a refused one is a denial.
        (
            State::Tracking { .. },
            Event::LivenessChecked {
                verdict: Liveness::Live,
            },
        ) => {
            counters.attempts += 1;
            (
                State::Authenticating {
                    attempt: counters.attempts,
                    since: now,
                },
                vec![C::Authenticate {
                    attempt: counters.attempts,
                }],
            )
        }
        (
            State::Tracking { .. },
            Event::LivenessChecked {
                verdict: Liveness::Refused,
            },
        ) => {
            counters.attempts += 1;
            deny(now, counters, config)
        }

        // Answers: only the current attempt counts.
        (
            State::Authenticating { attempt, .. },
            Event::Decided {
                attempt: answered,
                granted,
            },
        ) if attempt == answered => {
            if *granted {
                counters.denials = 0;
                (
                    State::Granted {
                        until: now + config.unlock_ms,
                    },
                    vec![
                        C::Unlock {
                            for_ms: config.unlock_ms,
                        },
                        C::Indicate { granted: true },
                        C::ResetTrack,
                    ],
                )
            } else {
                deny(now, counters, config)
            }
        }

        // Everything else changes nothing: frames while open or cooling down, stale answers,
        // liveness verdicts that come too late, ticks with no timer due.
        (state, _) => (state.clone(), vec![]),
    }
}

/// A denial (or an attempt that timed out): FAIL-SECURE lock, signal, cool down for the next
/// step of the escalation.
fn deny(now: Millis, counters: &mut Counters, config: &MachineConfig) -> (State, Vec<Command>) {
    let steps = &config.deny_cooldowns_ms;
    let cooldown = steps
        .get(counters.denials)
        .or(steps.last())
        .copied()
        .unwrap_or(0);
    counters.denials = counters.denials.saturating_add(1);
    (
        State::Cooldown {
            until: now.saturating_add(cooldown),
        },
        vec![
            Command::Lock,
            Command::Indicate { granted: false },
            Command::ResetTrack,
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: Event = Event::Frame {
        face: FaceSeen::Good,
    };
    const NO_FACE: Event = Event::Frame {
        face: FaceSeen::None,
    };
    const UNUSABLE: Event = Event::Frame {
        face: FaceSeen::Unusable,
    };

    /// Runs `(at, event)` steps from Idle and returns the final state and every command.
    fn run(events: &[(Millis, Event)]) -> (State, Vec<(Millis, Command)>) {
        let config = MachineConfig::default();
        let (mut state, mut counters, mut log) = (State::Idle, Counters::default(), Vec::new());
        for (at, event) in events {
            let (next, commands) = step(&state, event, *at, &mut counters, &config);
            log.extend(commands.into_iter().map(|c| (*at, c)));
            state = next;
        }
        (state, log)
    }

    fn decided(attempt: u64, granted: bool) -> Event {
        Event::Decided { attempt, granted }
    }

    fn live() -> Event {
        Event::LivenessChecked {
            verdict: Liveness::Live,
        }
    }

    fn not_yet() -> Event {
        Event::LivenessChecked {
            verdict: Liveness::NotYet,
        }
    }

    fn refused() -> Event {
        Event::LivenessChecked {
            verdict: Liveness::Refused,
        }
    }

    #[test]
    fn a_live_good_face_is_authenticated_once_and_the_door_opens_for_unlock_ms() {
        let (state, log) = run(&[
            (0, GOOD),
            (100, GOOD),
            (200, live()),
            (250, GOOD), // a frame while authenticating starts nothing
            (300, decided(1, true)),
            (1_000, GOOD), // the same person while the door is open
            (5_299, Event::Tick),
            (5_300, Event::Tick),
        ]);
        let authenticates = log
            .iter()
            .filter(|(_, c)| matches!(c, Command::Authenticate { .. }))
            .count();
        assert_eq!(authenticates, 1);
        assert!(log.contains(&(300, Command::Unlock { for_ms: 5_000 })));
        assert!(log.contains(&(5_300, Command::Lock)));
        assert!(!log.iter().any(|(at, c)| *c == Command::Lock && *at < 5_300));
        assert_eq!(state, State::Cooldown { until: 7_300 });
    }

    #[test]
    fn a_denial_locks_indicates_and_cools_down() {
        let (state, log) = run(&[
            (0, GOOD),
            (100, live()),
            (200, decided(1, false)),
            (500, GOOD),
            (3_199, Event::Tick),
        ]);
        assert!(log.contains(&(200, Command::Indicate { granted: false })));
        assert!(!log.iter().any(|(_, c)| matches!(c, Command::Unlock { .. })));
        assert_eq!(
            log.iter()
                .filter(|(_, c)| matches!(c, Command::Authenticate { .. }))
                .count(),
            1
        );
        assert_eq!(state, State::Cooldown { until: 3_200 });
        let (state, _) = run(&[
            (0, GOOD),
            (100, live()),
            (200, decided(1, false)),
            (3_200, Event::Tick),
            (3_300, GOOD),
        ]);
        assert!(
            matches!(state, State::Tracking { .. }),
            "tracking again after the cooldown"
        );
    }

    #[test]
    fn a_face_that_is_not_live_never_reaches_the_backend() {
        let (state, log) = run(&[(0, GOOD), (100, not_yet()), (200, GOOD), (300, not_yet())]);
        assert!(
            !log.iter()
                .any(|(_, c)| matches!(c, Command::Authenticate { .. }))
        );
        assert!(matches!(state, State::Tracking { good_frames: 2, .. }));
    }

    #[test]
    fn a_liveness_refusal_is_a_denial_with_a_cooldown() {
        let (state, log) = run(&[(0, GOOD), (100, refused()), (500, GOOD)]);
        assert!(
            !log.iter()
                .any(|(_, c)| matches!(c, Command::Authenticate { .. }))
        );
        assert!(log.contains(&(100, Command::Indicate { granted: false })));
        assert_eq!(state, State::Cooldown { until: 3_100 });
    }

    #[test]
    fn consecutive_denials_cool_down_longer_and_a_grant_starts_over() {
        let mut events = Vec::new();
        let mut at = 0;
        let mut cooldowns = Vec::new();
        // Five denials in a row: each waits out its cooldown, then tries again.
        for _ in 0..5 {
            events.extend([(at, GOOD), (at + 100, live()), (at + 200, decided_next())]);
            at += 200;
            let (state, _) = run(&with_attempts(&events));
            let State::Cooldown { until } = state else {
                panic!("{state:?}")
            };
            cooldowns.push(until - at);
            at = until;
            events.push((at, Event::Tick));
        }
        assert_eq!(cooldowns, vec![3_000, 10_000, 30_000, 120_000, 120_000]);
        // A grant resets the steps: the next denial waits 3 s again.
        events.extend([
            (at + 100, GOOD),
            (at + 200, live()),
            (at + 300, granted_next()),
        ]);
        events.extend([(at + 8_000, Event::Tick), (at + 8_000, Event::Tick)]);
        at += 10_000;
        events.push((at, Event::Tick));
        events.extend([
            (at + 100, GOOD),
            (at + 200, live()),
            (at + 300, decided_next()),
        ]);
        let (state, _) = run(&with_attempts(&events));
        assert_eq!(state, State::Cooldown { until: at + 3_300 });
    }

    /// Placeholders for the answer to the latest attempt, numbered by [`with_attempts`].
    fn decided_next() -> Event {
        Event::Decided {
            attempt: 0,
            granted: false,
        }
    }

    fn granted_next() -> Event {
        Event::Decided {
            attempt: 0,
            granted: true,
        }
    }

    /// Numbers each placeholder answer after the `live()` events before it.
    fn with_attempts(events: &[(Millis, Event)]) -> Vec<(Millis, Event)> {
        let mut n = 0;
        events
            .iter()
            .map(|(at, e)| match e {
                Event::LivenessChecked {
                    verdict: Liveness::Live,
                } => {
                    n += 1;
                    (*at, e.clone())
                }
                Event::Decided { granted, .. } => (
                    *at,
                    Event::Decided {
                        attempt: n,
                        granted: *granted,
                    },
                ),
                _ => (*at, e.clone()),
            })
            .collect()
    }

    #[test]
    fn a_stale_answer_does_not_open_the_door() {
        let (state, log) = run(&[
            (0, GOOD),
            (100, live()),
            (20_000, Event::Tick), // attempt 1 times out
            (23_000, Event::Tick),
            (23_100, GOOD),
            (23_200, live()),
            (23_300, decided(1, true)), // the late answer to 1
        ]);
        assert!(!log.iter().any(|(_, c)| matches!(c, Command::Unlock { .. })));
        assert_eq!(
            state,
            State::Authenticating {
                attempt: 2,
                since: 23_200
            }
        );
    }

    #[test]
    fn the_exit_button_opens_from_any_state_and_abandons_an_attempt() {
        let (state, log) = run(&[
            (0, GOOD),
            (100, live()),
            (200, Event::ExitRequested),
            (300, decided(1, false)), // the stale answer does not lock the leaving person in
            (5_199, Event::Tick),
        ]);
        assert!(log.contains(&(200, Command::Unlock { for_ms: 5_000 })));
        assert!(!log.iter().any(|(_, c)| *c == Command::Lock));
        assert_eq!(state, State::Granted { until: 5_200 });
        let (_, log) = run(&[(0, Event::ExitRequested), (5_000, Event::Tick)]);
        assert!(
            log.contains(&(5_000, Command::Lock)),
            "the exit unlock is bounded too"
        );
    }

    #[test]
    fn an_operators_lock_ends_an_unlock_and_changes_nothing_else() {
        let (state, log) = run(&[(0, Event::ExitRequested), (1_000, Event::LockRequested)]);
        assert!(log.contains(&(1_000, Command::Lock)));
        assert_eq!(state, State::Cooldown { until: 3_000 });
        let (state, log) = run(&[(0, GOOD), (100, Event::LockRequested)]);
        assert!(matches!(state, State::Tracking { .. }), "{state:?}");
        assert_eq!(log.last(), Some(&(100, Command::Lock)));
    }

    #[test]
    fn a_lost_face_drops_the_track() {
        let (state, _) = run(&[(0, GOOD), (1_000, NO_FACE), (1_600, Event::Tick)]);
        assert_eq!(state, State::Idle);
        let (state, _) = run(&[(0, GOOD), (1_000, UNUSABLE), (2_000, Event::Tick)]);
        assert!(
            matches!(state, State::Tracking { .. }),
            "an unusable face keeps the track alive"
        );
    }
}
