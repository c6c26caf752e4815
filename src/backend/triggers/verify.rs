//! Verify auth challenge response: is the answer the frame this challenge asked for, and does
//! its face belong to the user? Every error answers "wrong" (fail closed) and is logged.

use aws_lambda_events::event::cognito::CognitoEventUserPoolsVerifyAuthChallenge as VerifyEvent;

use super::{TriggerPorts, params};
use crate::backend::BackendError;

/// Where the verdict for a nonce is kept, so a retried invocation answers the same.
fn verdict_key(nonce: &str) -> String {
    format!("verdicts/{nonce}")
}

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
    let (Some(expected), Some(nonce), Some(issued_at)) = (
        private.get(params::UPLOAD_KEY),
        private.get(params::NONCE),
        private
            .get(params::ISSUED_AT)
            .and_then(|t| t.parse::<u64>().ok()),
    ) else {
        return Ok(Err("the challenge has no upload key"));
    };
    let answer = event
        .request
        .challenge_answer
        .as_ref()
        .and_then(|a| a.as_str());
    if answer != Some(expected.as_str()) {
        return Ok(Err("the answer is not the key this challenge issued"));
    }
    if let Some(verdict) = ports.signin.get(&verdict_key(nonce)).await? {
        // A retried invocation (Cognito retries on timeout) gets the first verdict.
        return Ok(if verdict == b"1" {
            Ok(())
        } else {
            Err("already answered")
        });
    }
    let outcome = judge_frame(
        expected,
        issued_at,
        username,
        event.request.user_not_found,
        ports,
    )
    .await?;
    let verdict: &[u8] = if outcome.is_ok() { b"1" } else { b"0" };
    ports
        .signin
        .put(&verdict_key(nonce), verdict.to_vec(), "text/plain")
        .await?;
    Ok(outcome)
}

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
    if info.uploaded_at_ms < issued_at {
        return Ok(Err(
            "the frame was uploaded before the challenge was issued",
        ));
    }
    if info.uploaded_at_ms > issued_at + config.challenge_ttl_ms {
        return Ok(Err("the frame was uploaded after the challenge expired"));
    }
    if info.size > config.max_image_bytes {
        ports.signin.delete(key).await?;
        return Ok(Err("the frame is over the size limit"));
    }
    let frame = ports.signin.get(key).await?;
    // Used once: the frame is gone whatever the verdict.
    ports.signin.delete(key).await?;
    let Some(frame) = frame else {
        return Ok(Err("the frame vanished"));
    };
    // The search runs for unknown users too, so their answers take as long as anyone's.
    let matches = match ports.faces.search_by_image(&frame, 10).await {
        Ok(m) => m,
        Err(BackendError::Rejected(_)) => return Ok(Err("no usable face in the frame")),
        Err(e) => return Err(e),
    };
    let user_faces = ports.directory.faces_of_user(username).await?;
    if user_not_found {
        return Ok(Err("unknown user"));
    }
    if user_faces.is_empty() {
        return Ok(Err("the user has no enrolled face"));
    }
    if matches.iter().any(|m| user_faces.contains(&m.face_id)) {
        Ok(Ok(()))
    } else {
        Ok(Err("the face does not match the user"))
    }
}
