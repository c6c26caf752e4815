//! The daemon's reactions: a frame is analysed and tracked, a tick lets timers fire, the door's
//! inputs become alarms and exits; each turns into machine events, and the machine's commands
//! are carried out here.

use super::analyser::Analysis;
use super::liveness;
use super::machine::{self, Command, Event, FaceSeen, Liveness, State};
use super::track::{Continuity, Track, TrackedFrame};
use super::{Attempt, Daemon, DaemonError};
use crate::camera::Frame;
use crate::door::SensorReading;
use crate::door::contact::DoorAlarm;
use crate::events::{Alarm, DenyReason, DoorCommand, DoorEvent, Outcome, Prompt, UnlockOrigin};
use crate::monitor::Stage;
use crate::settings::DoorSettings;
use crate::store::audit::AuditKind;

impl Track {
    /// A track as `settings` want it: liveness' window (and at least the frames an attempt
    /// sends) keep their images; a face below `track_similarity` of the track starts over.
    pub fn for_settings(settings: &DoorSettings) -> Track {
        Track::new(
            settings.liveness.min_frames.max(settings.matching.frames),
            settings.matching.track_similarity,
        )
    }
}

impl Daemon {
    /// Analyses one frame and lets the machine react; returns a finished attempt, if any.
    pub async fn on_frame(&mut self, frame: Frame) -> Result<Option<Attempt>, DaemonError> {
        let seen = self.analyse(frame)?;
        self.handle(Event::Frame { face: seen }).await
    }

    /// Lets timers fire, and checks the offline grants with the backend when that is due.
    pub async fn on_tick(&mut self) -> Result<Option<Attempt>, DaemonError> {
        let attempt = self.handle(Event::Tick).await?;
        let now = self.clock.now_ms();
        // The latest time seen follows the clock, so a clock set back later is noticed.
        self.grants.observe_time(now)?;
        if now >= self.revalidate_at_ms && matches!(self.state, State::Idle) {
            self.revalidate_at_ms = now + self.settings.offline.revalidate_ms;
            let outcome = self.revalidate_grants().await?;
            if outcome.dropped > 0 {
                tracing::info!(?outcome, "offline grants revalidated");
            }
        }
        Ok(attempt)
    }

    /// Reacts to the door's inputs: a press of the exit button opens the door (audited before
    /// the relay moves); the contact raises forced and held-open alarms. Returns what was
    /// audited.
    pub async fn on_sensors(
        &mut self,
        reading: SensorReading,
    ) -> Result<Vec<AuditKind>, DaemonError> {
        let mut audited = Vec::new();
        let now = self.clock.now_ms();
        if let Some(open) = reading.door_open
            && self.contact.is_open() != Some(open)
        {
            self.events.send(DoorEvent::Contact {
                at_ms: now,
                door: self.settings.door.clone(),
                open,
            });
        }
        let pressed = reading.exit_pressed && !self.exit_pressed;
        self.exit_pressed = reading.exit_pressed;
        if pressed {
            self.record_door(AuditKind::Exit, "request to exit".into())?;
            audited.push(AuditKind::Exit);
            self.handle(Event::ExitRequested).await?;
        }
        let alarm = reading
            .door_open
            .and_then(|open| self.contact.observe(open, self.door.state(), now));
        if let Some(alarm) = alarm {
            let (kind, reason, event) = match alarm {
                DoorAlarm::Forced => (
                    AuditKind::Forced,
                    "door opened while locked".to_string(),
                    Alarm::Forced,
                ),
                DoorAlarm::HeldOpen { open_ms } => (
                    AuditKind::HeldOpen,
                    format!("door held open for {} s", open_ms / 1000),
                    Alarm::HeldOpen,
                ),
                DoorAlarm::ClosedAfterAlarm => {
                    (AuditKind::Closed, "door closed".to_string(), Alarm::Closed)
                }
            };
            tracing::warn!(?alarm, door = %self.settings.door, "door alarm");
            self.record_door(kind, reason)?;
            self.events.send(DoorEvent::Alarm {
                at_ms: now,
                door: self.settings.door.clone(),
                alarm: event,
            });
            audited.push(kind);
        }
        Ok(audited)
    }

    /// Carries out an operator's command: audited with who asked, then the same bounded unlock
    /// (or the lock) as a grant's.
    pub async fn on_command(&mut self, command: DoorCommand) -> Result<(), DaemonError> {
        match command {
            DoorCommand::Unlock { by } => {
                self.record_door(AuditKind::RemoteUnlock, format!("unlocked by {by}"))?;
                self.unlock_by = Some(by);
                let handled = self.handle(Event::ExitRequested).await;
                self.unlock_by = None;
                handled?;
            }
            DoorCommand::Lock { by } => {
                self.record_door(AuditKind::RemoteLock, format!("locked by {by}"))?;
                self.handle(Event::LockRequested).await?;
            }
        }
        Ok(())
    }

    /// Tells the event stream what the person at the door should do, when that changes.
    fn prompt(&mut self, prompt: Prompt) {
        if self.prompt != prompt {
            self.prompt = prompt;
            self.events.send(DoorEvent::Prompt {
                at_ms: self.clock.now_ms(),
                door: self.settings.door.clone(),
                prompt,
            });
        }
    }

    fn analyse(&mut self, frame: Frame) -> Result<FaceSeen, DaemonError> {
        if !matches!(self.state, State::Idle | State::Tracking { .. }) {
            return Ok(FaceSeen::None); // the door is busy: no inference spent
        }
        let (analysis, timings) = self.analyser.analyse(&frame.image)?;
        self.monitor.inference(Stage::Detect, timings.detect);
        if let Some(embed) = timings.embed {
            self.monitor.inference(Stage::Embed, embed);
        }
        let (face, embedding, yaw) = match analysis {
            Analysis::NoFace => {
                // A face that leaves and comes back starts over: no frame before the gap counts.
                self.track.clear();
                self.prompt(Prompt::Nobody);
                return Ok(FaceSeen::None);
            }
            Analysis::Unusable { .. } => {
                self.prompt(Prompt::ComeCloser);
                return Ok(FaceSeen::Unusable);
            }
            Analysis::Good {
                face,
                embedding,
                yaw,
            } => (face, *embedding, yaw),
        };
        self.prompt(Prompt::HoldStill);
        let continuity = self.track.push(TrackedFrame {
            image: Some(frame.image),
            face,
            embedding,
            yaw,
        });
        if continuity == Continuity::NewPerson {
            tracing::info!(door = %self.settings.door, "another face in the track: starting over");
        }
        Ok(FaceSeen::Good)
    }

    /// What liveness says of the track: alive, not yet, or refused (with the reason).
    fn liveness_verdict(&mut self) -> (Liveness, String) {
        let config = self.settings.liveness.clone();
        let config = &config;
        if self.track.len() < config.min_frames {
            return (Liveness::NotYet, String::new());
        }
        let mut verdict = liveness::assess(&self.track.newest(config.min_frames), config);
        if verdict.live && config.head_turn {
            verdict = liveness::assess_head_turn(&self.track.all(), config);
            if !verdict.live {
                self.prompt(Prompt::TurnHead);
            }
        }
        let liveness = if verdict.live {
            Liveness::Live
        } else if self.track.len() >= config.max_frames {
            Liveness::Refused
        } else {
            Liveness::NotYet
        };
        (liveness, verdict.reason)
    }

    pub(super) async fn handle(&mut self, first: Event) -> Result<Option<Attempt>, DaemonError> {
        let mut queue = vec![first];
        let mut finished = None;
        let mut live_since = self.clock.now_ms();
        while let Some(event) = queue.pop() {
            let now = self.clock.now_ms();
            let (next, commands) = machine::step(
                &self.state,
                &event,
                now,
                &mut self.counters,
                &self.settings.machine,
            );
            self.state = next;
            for command in commands {
                match command {
                    Command::CheckLiveness => {
                        let (verdict, reason) = self.liveness_verdict();
                        if verdict == Liveness::NotYet {
                            continue;
                        }
                        live_since = now;
                        if verdict == Liveness::Refused {
                            // A refusal is an attempt: audited before anything else happens.
                            finished = Some(self.record(
                                live_since,
                                None,
                                Outcome::Denied(DenyReason::NotLive),
                                true,
                                format!("liveness: {reason}"),
                                None,
                            )?);
                        }
                        queue.push(Event::LivenessChecked { verdict });
                    }
                    Command::ResetTrack => self.track.clear(),
                    Command::Authenticate { attempt } => {
                        self.prompt(Prompt::Checking);
                        let record = self.authenticate(live_since).await?;
                        self.prompt(Prompt::Nobody);
                        let granted = record.granted();
                        finished = Some(record);
                        queue.push(Event::Decided { attempt, granted });
                    }
                    // FAIL-SECURE: an unlock is bounded by the machine's Granted timer.
                    Command::Unlock { for_ms } => {
                        self.door.unlock()?;
                        let origin = match (&event, &self.unlock_by) {
                            (Event::ExitRequested, Some(_)) => UnlockOrigin::Remote,
                            (Event::ExitRequested, None) => UnlockOrigin::Exit,
                            _ => UnlockOrigin::Grant,
                        };
                        self.events.send(DoorEvent::Unlocked {
                            at_ms: now,
                            door: self.settings.door.clone(),
                            origin,
                            for_ms,
                        });
                    }
                    Command::Lock => {
                        let was = self.door.state();
                        self.door.lock()?;
                        if was != self.door.state() {
                            self.events.send(DoorEvent::Locked {
                                at_ms: now,
                                door: self.settings.door.clone(),
                            });
                        }
                    }
                    Command::Indicate { granted } => self.indicator.show(granted),
                }
            }
        }
        if let Some(attempt) = finished.as_mut() {
            attempt.relay = self.door.state();
        }
        Ok(finished)
    }
}
