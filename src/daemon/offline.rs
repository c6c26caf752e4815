//! Offline grace around the daemon: the grant renewed after each online success, the decision
//! when the backend cannot be reached, and the revalidation of grants when it can.

use serde::{Deserialize, Serialize};

use super::{Attempt, Daemon, DaemonError};
use crate::backend::BackendError;
use crate::clock::Millis;
use crate::events::{DenyReason, Outcome, Via};
use crate::store::grants::{Grant, OfflineDecision};
use crate::vision::Embedding;

/// Offline grace settings (config section `[offline]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfflineConfig {
    /// How long after a user's last online success they may still be admitted offline.
    pub grace_secs: u64,
    /// The stricter cosine threshold used offline.
    pub match_threshold: f32,
    /// How often grants are checked with the backend (refresh tokens: still enabled? which
    /// groups?), seconds; also right after the backend answers again following an outage.
    pub revalidate_secs: u64,
}

impl Default for OfflineConfig {
    fn default() -> Self {
        Self {
            grace_secs: 24 * 3600,
            match_threshold: 0.5,
            revalidate_secs: 300,
        }
    }
}

/// What a revalidation of the offline grants did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Revalidation {
    pub kept: usize,
    /// Users the backend refused (disabled, deleted, token revoked): their grants are gone.
    pub dropped: usize,
    /// The backend could not be reached; these grants were left as they were.
    pub unreachable: usize,
}

impl Daemon {
    /// Refreshes every grant's tokens: a user the backend refuses loses the grant; the groups
    /// of the others follow the backend. The time of the last face authentication is not
    /// moved — only a face at the door renews the grace window.
    pub async fn revalidate_grants(&mut self) -> Result<Revalidation, DaemonError> {
        let mut outcome = Revalidation::default();
        for mut grant in self.grants.all()? {
            let Some(token) = grant.refresh_token.clone() else {
                outcome.kept += 1;
                continue;
            };
            let refreshed = match self.flow.refresh(&grant.username, &token).await {
                Ok(tokens) => self
                    .flow
                    .verify_tokens(&tokens.id_token, &tokens.access_token)
                    .await
                    .map(|claims| claims.map_err(|e| e.to_string())),
                Err(BackendError::Denied(why) | BackendError::Rejected(why)) => Ok(Err(why)),
                Err(e) => Err(e),
            };
            match refreshed {
                Ok(Ok(claims)) => {
                    grant.groups = claims.groups();
                    grant.tokens_expire_at_secs = claims.expires_at().unwrap_or(0);
                    self.grants.record(&grant)?;
                    outcome.kept += 1;
                }
                Ok(Err(why)) => {
                    tracing::info!(user = %grant.username, %why, "offline grant dropped");
                    self.grants.revoke(&grant.username)?;
                    outcome.dropped += 1;
                }
                Err(_) => outcome.unreachable += 1,
            }
        }
        Ok(outcome)
    }

    pub(super) fn renew_grant(
        &self,
        decision: &crate::auth::Decision,
        embedding: &Embedding,
    ) -> Result<(), DaemonError> {
        let (Some(user), Some(claims)) = (&decision.user, &decision.claims) else {
            return Ok(());
        };
        self.grants.record(&Grant {
            username: user.clone(),
            groups: claims.groups(),
            online_at_ms: self.clock.now_ms(),
            embedding: embedding.to_bytes(),
            refresh_token: decision.refresh_token.clone(),
            tokens_expire_at_secs: claims.expires_at().unwrap_or(0),
        })?;
        Ok(())
    }

    pub(super) fn decide_offline(
        &self,
        live_since: Millis,
        frames: &[Embedding],
    ) -> Result<Attempt, DaemonError> {
        let offline = &self.settings.offline;
        let decision = self.grants.decide(
            frames,
            &self.settings.rule,
            offline.floor,
            offline.grace_ms,
            self.clock.now_ms(),
        )?;
        let (user, outcome, reason, similarity) = match decision {
            OfflineDecision::Admit {
                username,
                groups,
                similarity,
            } => match self
                .settings
                .policy
                .allowed_groups
                .iter()
                .find(|g| groups.contains(g))
            {
                Some(group) => (
                    username,
                    Outcome::Granted(Via::OfflineGrace),
                    format!("offline grace; member of {group}"),
                    Some(similarity),
                ),
                None => (
                    username,
                    Outcome::Denied(DenyReason::NotAdmitted),
                    "offline, and not in a group this door admits".into(),
                    Some(similarity),
                ),
            },
            OfflineDecision::Deny {
                reason,
                username,
                similarity,
            } => {
                let outcome = Outcome::Denied(DenyReason::OfflineNoGrant);
                return self.record(live_since, username, outcome, false, reason, similarity);
            }
        };
        self.record(live_since, Some(user), outcome, false, reason, similarity)
    }
}
