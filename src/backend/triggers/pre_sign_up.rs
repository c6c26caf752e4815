//! Pre sign-up: enrollment is an administrative act. Self-service sign-up and federated
//! sign-up are refused; admin-created users pass without auto-verification.

use aws_lambda_events::event::cognito::{
    CognitoEventUserPoolsPreSignup as PreSignUpEvent,
    CognitoEventUserPoolsPreSignupTriggerSource as Source,
};

use crate::backend::BackendError;

pub fn pre_sign_up(mut event: PreSignUpEvent) -> Result<PreSignUpEvent, BackendError> {
    match event.cognito_event_user_pools_header.trigger_source {
        Some(Source::AdminCreateUser) => {
            event.response.auto_confirm_user = false;
            event.response.auto_verify_email = false;
            event.response.auto_verify_phone = false;
            Ok(event)
        }
        _ => Err(BackendError::Rejected(
            "self-service sign-up is disabled: an administrator enrolls users (facegate enroll)"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: Source) -> PreSignUpEvent {
        let mut e = PreSignUpEvent::default();
        e.cognito_event_user_pools_header.trigger_source = Some(source);
        e.response.auto_confirm_user = true;
        e.response.auto_verify_email = true;
        e
    }

    #[test]
    fn self_sign_up_is_refused_and_nothing_is_auto_verified() {
        assert!(matches!(
            pre_sign_up(event(Source::SignUp)),
            Err(BackendError::Rejected(_))
        ));
        assert!(pre_sign_up(event(Source::ExternalProvider)).is_err());
        let admin = pre_sign_up(event(Source::AdminCreateUser)).unwrap();
        assert!(!admin.response.auto_confirm_user);
        assert!(!admin.response.auto_verify_email);
    }
}
