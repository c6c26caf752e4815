//! The Cognito user pool through `aws-sdk-cognitoidentityprovider`: the CUSTOM_AUTH exchange
//! and refresh for the device, the user lookup for the triggers, and the admin calls behind
//! enrollment. `SECRET_HASH` is added when the app client has a secret.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, AuthFlowType, AuthenticationResultType, ChallengeNameType, MessageActionType,
};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;

use super::errors;
use crate::backend::triggers::CUSTOM_CHALLENGE;
use crate::backend::{AuthStep, BackendError, IdentityProvider, Tokens, UserLookup};

/// `Base64(HMAC-SHA256(client_secret, username + client_id))`, as Cognito defines it.
pub fn secret_hash(client_secret: &str, username: &str, client_id: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(client_secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(username.as_bytes());
    mac.update(client_id.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// One user pool and app client.
#[derive(Clone)]
pub struct CognitoPool {
    client: Client,
    user_pool_id: String,
    client_id: String,
    client_secret: Option<String>,
}

impl CognitoPool {
    pub fn new(
        client: Client,
        user_pool_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Option<String>,
    ) -> Self {
        Self {
            client,
            user_pool_id: user_pool_id.into(),
            client_id: client_id.into(),
            client_secret,
        }
    }

    fn hash(&self, username: &str) -> Option<String> {
        self.client_secret
            .as_deref()
            .map(|secret| secret_hash(secret, username, &self.client_id))
    }

    /// Creates `username` (an e-mail address) with no usable password: the pool's app client
    /// only allows CUSTOM_AUTH, and the password set is 30 random bytes nobody ever sees, so
    /// the account is confirmed without any welcome message. An existing user is kept.
    pub async fn create_user(&self, username: &str, name: &str) -> Result<bool, BackendError> {
        let attribute = |name: &str, value: &str| {
            AttributeType::builder()
                .name(name)
                .value(value)
                .build()
                .map_err(|e| BackendError::Internal(e.to_string()))
        };
        let created = self
            .client
            .admin_create_user()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .message_action(MessageActionType::Suppress)
            .user_attributes(attribute("email", username)?)
            .user_attributes(attribute("email_verified", "true")?)
            .user_attributes(attribute("name", name)?)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("UsernameExistsException") => return Ok(false),
            Err(e) => return Err(errors::map("Cognito AdminCreateUser", e)),
        }
        let mut secret = [0u8; 30];
        rand::thread_rng().fill_bytes(&mut secret);
        let password = format!(
            "Fg1!{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        self.client
            .admin_set_user_password()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .password(password)
            .permanent(true)
            .send()
            .await
            .map_err(|e| errors::map("Cognito AdminSetUserPassword", e))?;
        Ok(true)
    }

    pub async fn add_to_group(&self, username: &str, group: &str) -> Result<(), BackendError> {
        self.client
            .admin_add_user_to_group()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .group_name(group)
            .send()
            .await
            .map_err(|e| errors::map("Cognito AdminAddUserToGroup", e))?;
        Ok(())
    }
}

fn tokens(result: &AuthenticationResultType) -> Result<Tokens, BackendError> {
    let missing = |what| BackendError::Internal(format!("Cognito answered without {what}"));
    Ok(Tokens {
        id_token: result
            .id_token()
            .ok_or_else(|| missing("an ID token"))?
            .into(),
        access_token: result
            .access_token()
            .ok_or_else(|| missing("an access token"))?
            .into(),
        refresh_token: result.refresh_token().map(str::to_string),
        expires_in_secs: u64::try_from(result.expires_in()).unwrap_or(0),
    })
}

/// A challenge or tokens, from either call's answer.
fn step(
    challenge: Option<&ChallengeNameType>,
    session: Option<&str>,
    parameters: Option<&HashMap<String, String>>,
    result: Option<&AuthenticationResultType>,
) -> Result<AuthStep, BackendError> {
    if let Some(result) = result {
        return Ok(AuthStep::Tokens(tokens(result)?));
    }
    match challenge {
        Some(ChallengeNameType::CustomChallenge) => Ok(AuthStep::Challenge {
            session: session
                .ok_or_else(|| BackendError::Internal("a challenge without a session".into()))?
                .to_string(),
            parameters: parameters.cloned().unwrap_or_default(),
        }),
        other => Err(BackendError::Internal(format!(
            "Cognito asked for {other:?}, not {CUSTOM_CHALLENGE}: is the app client custom-auth only?"
        ))),
    }
}

#[async_trait]
impl IdentityProvider for CognitoPool {
    async fn initiate_custom_auth(&self, username: &str) -> Result<AuthStep, BackendError> {
        let mut request = self
            .client
            .initiate_auth()
            .auth_flow(AuthFlowType::CustomAuth)
            .client_id(&self.client_id)
            .auth_parameters("USERNAME", username);
        if let Some(hash) = self.hash(username) {
            request = request.auth_parameters("SECRET_HASH", hash);
        }
        let out = request
            .send()
            .await
            .map_err(|e| errors::map("Cognito InitiateAuth", e))?;
        step(
            out.challenge_name(),
            out.session(),
            out.challenge_parameters(),
            out.authentication_result(),
        )
    }

    async fn respond_to_challenge(
        &self,
        username: &str,
        session: &str,
        answer: &str,
    ) -> Result<AuthStep, BackendError> {
        let mut request = self
            .client
            .respond_to_auth_challenge()
            .client_id(&self.client_id)
            .challenge_name(ChallengeNameType::CustomChallenge)
            .session(session)
            .challenge_responses("USERNAME", username)
            .challenge_responses("ANSWER", answer);
        if let Some(hash) = self.hash(username) {
            request = request.challenge_responses("SECRET_HASH", hash);
        }
        let out = request
            .send()
            .await
            .map_err(|e| errors::map("Cognito RespondToAuthChallenge", e))?;
        step(
            out.challenge_name(),
            out.session(),
            out.challenge_parameters(),
            out.authentication_result(),
        )
    }

    async fn refresh(&self, username: &str, refresh_token: &str) -> Result<Tokens, BackendError> {
        let mut request = self
            .client
            .initiate_auth()
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .client_id(&self.client_id)
            .auth_parameters("REFRESH_TOKEN", refresh_token);
        if let Some(hash) = self.hash(username) {
            request = request.auth_parameters("SECRET_HASH", hash);
        }
        let out = request
            .send()
            .await
            .map_err(|e| errors::map("Cognito InitiateAuth (refresh)", e))?;
        let result = out
            .authentication_result()
            .ok_or_else(|| BackendError::Denied("refresh answered without tokens".into()))?;
        tokens(result)
    }
}

#[async_trait]
impl UserLookup for CognitoPool {
    async fn user_exists(&self, username: &str) -> Result<bool, BackendError> {
        match self
            .client
            .admin_get_user()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .await
        {
            Ok(user) => Ok(user.enabled()),
            Err(e) if e.code() == Some("UserNotFoundException") => Ok(false),
            Err(e) => Err(errors::map("Cognito AdminGetUser", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hash_matches_an_independent_implementation() {
        // Computed with Python's hmac and base64 modules:
        // base64(hmac.new(b"client-secret-123", b"ana@example.com" + b"3n4b5urk1ft4fl3mg5e62d9ado",
        //                 sha256).digest())
        assert_eq!(
            secret_hash(
                "client-secret-123",
                "ana@example.com",
                "3n4b5urk1ft4fl3mg5e62d9ado"
            ),
            "h0khE29GrsR3G33kChXrARt4GnqDW1U2cYSeGwqkn+k="
        );
    }
}
