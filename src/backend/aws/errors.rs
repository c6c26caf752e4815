//! AWS errors mapped to what the daemon must do about them. The SDK has already retried
//! throttling and 5xx with backoff (standard retry mode) by the time an error reaches here.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::backend::BackendError;

/// How an SDK call failed, reduced to what the mapping needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure<'a> {
    /// No response: DNS, connect, TLS, timeout, a dead endpoint.
    NoResponse(String),
    /// The service answered with an error code (and maybe an HTTP status).
    Service {
        code: Option<&'a str>,
        status: Option<u16>,
        message: String,
    },
}

/// The mapping itself, pure: unavailable (go offline), throttled (retry later), denied (the
/// authentication was refused), rejected (bad input), internal (a deployment problem).
pub fn classify(service: &str, failure: Failure) -> BackendError {
    let (code, status, message) = match failure {
        Failure::NoResponse(why) => {
            return BackendError::Unavailable(format!("{service} cannot be reached: {why}"));
        }
        Failure::Service {
            code,
            status,
            message,
        } => (code.unwrap_or(""), status, message),
    };
    let said = format!("{service}: {code}: {message}");
    match code {
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "ProvisionedThroughputExceededException"
        | "RequestLimitExceeded"
        | "LimitExceededException"
        | "SlowDown" => BackendError::Throttled(said),
        "NotAuthorizedException"
        | "UserNotFoundException"
        | "UserNotConfirmedException"
        | "CodeMismatchException"
        | "ExpiredCodeException"
        | "PasswordResetRequiredException"
        | "UserLambdaValidationException" => BackendError::Denied(said),
        "InvalidParameterException"
        | "InvalidParameterValue"
        | "InvalidImageFormatException"
        | "ImageTooLargeException"
        | "InvalidS3ObjectException"
        | "ValidationException" => BackendError::Rejected(said),
        "AccessDenied"
        | "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "ExpiredTokenException" => BackendError::Internal(format!(
            "{said} (check the device's credentials and its IAM policy, docs/aws.md)"
        )),
        "ResourceNotFoundException" | "NoSuchBucket" => BackendError::Internal(format!(
            "{said} (check the names in [backend.aws] against the stack's outputs)"
        )),
        // A trigger Lambda that timed out or could not be run: Cognito could not decide, so
        // this is an outage (offline grace applies), not a refusal or a bug.
        "UnexpectedLambdaException" => BackendError::Unavailable(said),
        _ if status.is_some_and(|s| s >= 500) => BackendError::Unavailable(said),
        "InternalErrorException"
        | "InternalServerError"
        | "InternalError"
        | "ServiceUnavailable"
        | "ServiceUnavailableException" => BackendError::Unavailable(said),
        _ => BackendError::Internal(said),
    }
}

/// Maps any SDK error.
pub fn map<E, R>(service: &str, error: SdkError<E, R>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    match &error {
        SdkError::ServiceError(context) => {
            let err = context.err();
            classify(
                service,
                Failure::Service {
                    code: err.code(),
                    status: context.raw().status_code(),
                    message: err.message().unwrap_or("no message").to_string(),
                },
            )
        }
        SdkError::ResponseError(context) => classify(
            service,
            Failure::Service {
                code: None,
                status: context.raw().status_code(),
                message: "the response could not be read".into(),
            },
        ),
        SdkError::ConstructionFailure(_) => {
            BackendError::Internal(format!("{service}: request not built: {error:?}"))
        }
        _ => classify(
            service,
            Failure::NoResponse(
                aws_smithy_types::error::display::DisplayErrorContext(&error).to_string(),
            ),
        ),
    }
}

/// The HTTP status of a raw response, where there is one.
pub trait HttpStatus {
    fn status_code(&self) -> Option<u16>;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> Option<u16> {
        Some(self.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, status: u16) -> BackendError {
        classify(
            "Cognito",
            Failure::Service {
                code: Some(code),
                status: Some(status),
                message: "m".into(),
            },
        )
    }

    #[test]
    fn each_error_maps_to_what_the_daemon_must_do() {
        assert!(matches!(
            classify("S3", Failure::NoResponse("connection refused".into())),
            BackendError::Unavailable(_)
        ));
        assert!(matches!(
            service("ThrottlingException", 400),
            BackendError::Throttled(_)
        ));
        assert!(matches!(
            service("SlowDown", 503),
            BackendError::Throttled(_)
        ));
        assert!(matches!(
            service("NotAuthorizedException", 400),
            BackendError::Denied(_)
        ));
        assert!(matches!(
            service("UserNotFoundException", 400),
            BackendError::Denied(_)
        ));
        assert!(matches!(
            service("InvalidImageFormatException", 400),
            BackendError::Rejected(_)
        ));
        assert!(matches!(
            service("InternalErrorException", 500),
            BackendError::Unavailable(_)
        ));
        assert!(matches!(
            service("Whatever", 502),
            BackendError::Unavailable(_)
        ));
        let iam = service("AccessDeniedException", 400);
        assert!(matches!(
            service("InvalidLambdaResponseException", 400),
            BackendError::Internal(_)
        ));
        assert!(
            matches!(&iam, BackendError::Internal(m) if m.contains("IAM policy")),
            "{iam:?}"
        );
        assert!(matches!(
            service("Whatever", 400),
            BackendError::Internal(_)
        ));
    }

    /// Cognito answers a trigger that timed out (or could not run) with a 400
    /// `UnexpectedLambdaException`: an outage, so offline grace applies.
    #[test]
    fn a_trigger_that_timed_out_is_unavailable() {
        let timed_out = service("UnexpectedLambdaException", 400);
        assert!(
            matches!(timed_out, BackendError::Unavailable(_)),
            "{timed_out:?}"
        );
    }
}
