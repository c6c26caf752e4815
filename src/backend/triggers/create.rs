//! Create auth challenge: issues a fresh nonce and the sign-in key the frame must be uploaded
//! under. Public parameters hold only the key and upload instructions, never a FaceId.

use aws_lambda_events::event::cognito::CognitoEventUserPoolsCreateAuthChallenge as CreateEvent;

use super::{CHALLENGE_METADATA, TriggerConfig, params};
use crate::backend::random_id;
use crate::clock::Clock;

pub fn create_auth_challenge(
    mut event: CreateEvent,
    clock: &dyn Clock,
    config: &TriggerConfig,
) -> CreateEvent {
    let nonce = random_id();
    let key = format!("{}{nonce}.jpg", config.signin_prefix);
    let response = &mut event.response;
    response.public_challenge_parameters = [
        (params::UPLOAD_KEY, key.clone()),
        (params::MAX_BYTES, config.max_image_bytes.to_string()),
        (params::CONTENT_TYPE, "image/jpeg".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    response.private_challenge_parameters = [
        (params::UPLOAD_KEY, key),
        (params::ISSUED_AT, clock.now_ms().to_string()),
        (params::NONCE, nonce),
        (params::VERDICT_ID, random_id()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    response.challenge_metadata = Some(CHALLENGE_METADATA.into());
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn each_challenge_has_its_own_key_and_no_secret_in_public() {
        let clock = ManualClock::at(1_000);
        let config = TriggerConfig::default();
        let a = create_auth_challenge(CreateEvent::default(), &clock, &config).response;
        let b = create_auth_challenge(CreateEvent::default(), &clock, &config).response;
        let key = &a.public_challenge_parameters[params::UPLOAD_KEY];
        assert!(key.starts_with("signin/") && key.ends_with(".jpg"));
        assert_ne!(key, &b.public_challenge_parameters[params::UPLOAD_KEY]);
        assert_eq!(&a.private_challenge_parameters[params::UPLOAD_KEY], key);
        assert_eq!(a.private_challenge_parameters[params::ISSUED_AT], "1000");
        let public: Vec<&String> = a.public_challenge_parameters.keys().collect();
        assert_eq!(
            public.len(),
            3,
            "only key, size limit and content type: {public:?}"
        );
        assert!(
            !a.public_challenge_parameters
                .contains_key(params::ISSUED_AT)
        );
        assert!(
            a.public_challenge_parameters
                .values()
                .all(|v| !v.to_lowercase().contains("face"))
        );
    }
}
