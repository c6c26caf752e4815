//! Define auth challenge: decides, from the results so far, whether to issue tokens, fail, or
//! ask for (another) face frame.

use aws_lambda_events::event::cognito::CognitoEventUserPoolsDefineAuthChallenge as DefineEvent;

use super::{CUSTOM_CHALLENGE, TriggerConfig};

pub fn define_auth_challenge(mut event: DefineEvent, config: &TriggerConfig) -> DefineEvent {
    let results: Vec<_> = event.request.session.iter().flatten().collect();
    let foreign = results
        .iter()
        .any(|r| r.challenge_name.as_deref() != Some(CUSTOM_CHALLENGE));
    let last_passed = results.last().is_some_and(|r| r.challenge_result);
    let response = &mut event.response;
    response.issue_tokens = false;
    response.fail_authentication = false;
    response.challenge_name = None;
    if foreign {
        // Only our own challenge may lead to tokens (no SRP or password rounds).
        response.fail_authentication = true;
    } else if last_passed && !event.request.user_not_found {
        response.issue_tokens = true;
    } else if results.len() >= config.max_attempts {
        response.fail_authentication = true;
    } else {
        // An unknown user gets the same challenge as a known one and fails at Verify, so the
        // exchange does not reveal who is enrolled.
        response.challenge_name = Some(CUSTOM_CHALLENGE.into());
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::cognito::CognitoEventUserPoolsChallengeResult as ChallengeResult;

    fn event(results: &[(&str, bool)], user_not_found: bool) -> DefineEvent {
        let mut e = DefineEvent::default();
        e.request.user_not_found = user_not_found;
        e.request.session = results
            .iter()
            .map(|(name, ok)| {
                let mut r = ChallengeResult::default();
                r.challenge_name = Some(name.to_string());
                r.challenge_result = *ok;
                Some(r)
            })
            .collect();
        e
    }

    fn decide(results: &[(&str, bool)], user_not_found: bool) -> (Option<String>, bool, bool) {
        let r = define_auth_challenge(event(results, user_not_found), &TriggerConfig::default())
            .response;
        (r.challenge_name, r.issue_tokens, r.fail_authentication)
    }

    #[test]
    fn the_table_of_decisions() {
        let challenge = (Some(CUSTOM_CHALLENGE.to_string()), false, false);
        let tokens = (None, true, false);
        let fail = (None, false, true);
        let c = CUSTOM_CHALLENGE;
        assert_eq!(
            decide(&[], false),
            challenge,
            "first round asks for a frame"
        );
        assert_eq!(decide(&[(c, true)], false), tokens);
        assert_eq!(
            decide(&[(c, false)], false),
            challenge,
            "a wrong answer may be retried"
        );
        assert_eq!(decide(&[(c, false), (c, false)], false), challenge);
        assert_eq!(
            decide(&[(c, false), (c, false), (c, false)], false),
            fail,
            "3 wrong answers end it"
        );
        assert_eq!(decide(&[(c, false), (c, true)], false), tokens);
        assert_eq!(
            decide(&[("SRP_A", true)], false),
            fail,
            "foreign challenges never issue tokens"
        );
        assert_eq!(
            decide(&[], true),
            challenge,
            "unknown users see the same shape"
        );
        assert_eq!(
            decide(&[(c, true)], true),
            challenge,
            "unknown users never get tokens"
        );
        assert_eq!(decide(&[(c, true), (c, true), (c, true)], true), fail);
    }
}
