//! Verify auth challenge response: is the answer the frame this challenge asked for, and is its
//! face the user's by the decision rule? Every error answers "wrong" (fail closed) and is
//! logged.
//!
//! Cognito retries a Verify that does not answer in time, so the verdict is filed (in the
//! trigger-only ledger, under a private id) before the frame is deleted: a retry either finds
//! the verdict or the frame, never neither. A user with too many recent failed answers is
//! locked out: their answers are judged as usual (same work, same shape) and answered wrong.

use aws_lambda_events::event::cognito::CognitoEventUserPoolsVerifyAuthChallenge as VerifyEvent;

use super::{TriggerPorts, params};
use crate::backend::BackendError;
use crate::backend::identify::identify;
use crate::matching::Identification;

pub async fn verify_auth_challenge(mut event: VerifyEvent, ports: &TriggerPorts) -> VerifyEvent {
    let username = event
        .cognito_event_user_pools_header
        .user_name
        .clone()
        .unwrap_or_default();
    let correct = match check(&event, &username, ports).await {
        Ok(Ok(())) => true,
        Ok(Err(reason)) => {
            tracing::info!(user = %username, reason, "challenge answer refused");
            false
        }
        Err(error) => {
            tracing::warn!(user = %username, %error, "challenge verification failed; answering wrong");
            false
        }
    };
    event.response.answer_correct = correct;
    event
}

/// `Ok(Ok(()))` correct, `Ok(Err(reason))` wrong, `Err` a backend failure (also wrong).
async fn check(
    event: &VerifyEvent,
    username: &str,
    ports: &TriggerPorts,
) -> Result<Result<(), &'static str>, BackendError> {
    let private = &event.request.private_challenge_parameters;
    let (Some(expected), Some(verdict_id), Some(issued_at)) = (
        private.get(params::UPLOAD_KEY),
        private.get(params::VERDICT_ID),
        private
            .get(params::ISSUED_AT)
            .and_then(|t| t.parse::<u64>().ok()),
    ) else {
        return Ok(Err("the challenge has no upload key"));
    };
    let config = &ports.config;
    let now = ports.clock.now_ms();
    let since = now.saturating_sub(config.lockout_window_ms);
    let (filed, failures) = tokio::try_join!(
        ports.ledger.verdict(verdict_id),
        ports.ledger.failures_since(username, since),
    )?;
    if let Some(verdict) = filed {
        // A retried invocation gets the first verdict.
        return Ok(if verdict {
            Ok(())
        } else {
            Err("already answered")
        });
    }
    let answer = event
        .request
        .challenge_answer
        .as_ref()
        .and_then(|a| a.as_str());
    let outcome = if answer != Some(expected.as_str()) {
        Err("the answer is not the key this challenge issued")
    } else {
        judge_frame(
            expected,
            issued_at,
            username,
            event.request.user_not_found,
            ports,
        )
        .await?
    };
    let locked = failures >= config.lockout_failures;
    let outcome = if locked {
        Err("too many failed answers: the user is locked out for a while")
    } else {
        outcome
    };
    let expires = issued_at + config.challenge_ttl_ms;
    let correct = ports
        .ledger
        .file_verdict(verdict_id, outcome.is_ok(), expires)
        .await?;
    let bookkeeping = async {
        match (correct, locked) {
            (true, _) => ports.ledger.clear_failures(username).await,
            // Failures while locked out are not counted: the lockout ends when the window
            // passes, however hard someone keeps trying.
            (false, true) => Ok(()),
            (false, false) => {
                let keep_until = now + config.lockout_window_ms;
                ports.ledger.record_failure(username, now, keep_until).await
            }
        }
    };
    // Used once: the frame goes now that the verdict is on file.
    let delete = async {
        if answer == Some(expected.as_str()) {
            ports.signin.delete(expected).await
        } else {
            Ok(())
        }
    };
    tokio::try_join!(bookkeeping, delete)?;
    Ok(match (correct, outcome) {
        (true, _) => Ok(()),
        (false, Err(reason)) => Err(reason),
        (false, Ok(())) => Err("already answered"),
    })
}

/// Judges the uploaded frame, leaving it in place.
async fn judge_frame(
    key: &str,
    issued_at: u64,
    username: &str,
    user_not_found: bool,
    ports: &TriggerPorts,
) -> Result<Result<(), &'static str>, BackendError> {
    let config = &ports.config;
    if !key.starts_with(&config.signin_prefix) {
        return Ok(Err("the key is outside the sign-in store"));
    }
    let Some(info) = ports.signin.head(key).await? else {
        return Ok(Err("no frame was uploaded under the key"));
    };
    // S3 keeps whole seconds: a frame uploaded in the challenge's own second carries a time up
    // to 999 ms before it. The key itself is random and issued with the challenge, so nothing
    // could be uploaded under it earlier than that second.
    let issued_second = issued_at - issued_at % 1000;
    if info.uploaded_at_ms < issued_second {
        return Ok(Err(
            "the frame was uploaded before the challenge was issued",
        ));
    }
    // The same whole seconds at the end: a time in the second the challenge expired may stand
    // for any moment of that second, so that second fails closed.
    if info.uploaded_at_ms + 999 > issued_at + config.challenge_ttl_ms {
        return Ok(Err("the frame was uploaded after the challenge expired"));
    }
    if info.size > config.max_image_bytes {
        return Ok(Err("the frame is over the size limit"));
    }
    let Some(frame) = ports.signin.get(key).await? else {
        return Ok(Err("the frame vanished"));
    };
    if frame.len() as u64 > config.max_image_bytes {
        return Ok(Err("the frame is over the size limit"));
    }
    // The search runs for unknown users too, so their answers take as long as anyone's.
    let identified = match identify(
        &frame,
        Some(username),
        ports.faces.as_ref(),
        ports.directory.as_ref(),
        &config.rule,
    )
    .await?
    {
        Ok(identified) => identified,
        Err(_) => return Ok(Err("no usable face in the frame")),
    };
    if user_not_found {
        return Ok(Err("unknown user"));
    }
    Ok(match identified.verdict {
        Identification::Match { .. } => Ok(()),
        Identification::Ambiguous { .. } => Err("the face is as close to someone else's"),
        Identification::Unknown { .. } => Err("the face does not match the user"),
    })
}
