//! The backend lines of `facegate doctor`: the embedded user store (opened only when it is this
//! user's), or AWS — region, credentials, the user pool's published keys, the two buckets.

use std::sync::{Arc, Mutex};

use super::Check;
use super::checks::{RUN_AS_SERVICE, StoreAccess, is_locked, store_access};
use crate::backend::aws::{AwsBackend, jwks};
use crate::backend::embedded::EmbeddedBackend;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::vision::FaceEngine;

pub fn embedded(config: &Config, engine: Option<FaceEngine>) -> Check {
    const NAME: &str = "backend";
    let Some(engine) = engine else {
        return Check::skip(NAME, "needs the models");
    };
    match store_access(&config.data_dir, "backend.sled") {
        StoreAccess::Absent => {
            return Check::warn(
                NAME,
                "embedded: nobody is enrolled yet",
                "enroll someone: facegate enroll --user EMAIL --name NAME --photo PATH --group GROUP",
            );
        }
        StoreAccess::OwnedByOther(uid) => {
            return Check::warn(
                NAME,
                format!("embedded: the user store belongs to uid {uid}: not opened"),
                RUN_AS_SERVICE,
            );
        }
        StoreAccess::Usable => {}
    }
    let backend = match EmbeddedBackend::open(
        &config.data_dir,
        Arc::new(Mutex::new(engine)),
        &config.backend.embedded,
        Arc::new(SystemClock),
    ) {
        Ok(backend) => backend,
        Err(e) if is_locked(&e.to_string()) => {
            return Check::ok(
                NAME,
                "embedded: the user store is in use by the running service",
            );
        }
        Err(e) => {
            return Check::fail(
                NAME,
                e.to_string(),
                "restore the data directory from a backup (docs/operations.md)",
            );
        }
    };
    let users = match backend.users.list() {
        Ok(users) => users,
        Err(e) => return Check::fail(NAME, e.to_string(), "restore the data directory"),
    };
    let enabled: Vec<_> = users.iter().filter(|u| u.enabled).collect();
    let closed: Vec<&str> = config
        .doors
        .iter()
        .filter(|(_, policy)| {
            !enabled
                .iter()
                .any(|u| policy.allowed_groups.iter().any(|g| u.groups.contains(g)))
        })
        .map(|(name, _)| name.as_str())
        .collect();
    let detail = format!(
        "embedded: {} user(s), {} enabled",
        users.len(),
        enabled.len()
    );
    if closed.is_empty() {
        Check::ok(NAME, detail)
    } else {
        Check::warn(
            NAME,
            format!("{detail}; nobody may open door(s) {}", closed.join(", ")),
            "add someone to a door's allowed group: facegate users add-group EMAIL GROUP",
        )
    }
}

/// AWS mode: region, credentials, the user pool's keys, the two buckets.
pub async fn aws(config: &Config) -> Vec<Check> {
    let aws = &config.backend.aws;
    let backend = match AwsBackend::connect(aws).await {
        Ok(backend) => backend,
        Err(e) => {
            return vec![Check::fail(
                "aws",
                e.to_string(),
                "set backend.aws.region (or AWS_REGION) and the stack outputs (docs/aws.md)",
            )];
        }
    };
    let mut checks = Vec::new();
    checks.push(match AwsBackend::resolve_credentials(aws).await {
        Ok(detail) => Check::ok("aws creds", format!("region {}; {detail}", backend.region)),
        Err(e) => Check::fail(
            "aws creds",
            e.to_string(),
            "give the device credentials for the facegate user: AWS_* variables in a root-only \
             EnvironmentFile= drop-in, or a shared credentials file (docs/aws.md)",
        ),
    });
    let url = backend.jwks_url();
    let http = reqwest::Client::builder()
        .timeout(aws.operation_timeout())
        .build();
    checks.push(match http {
        Ok(http) => match jwks::fetch(&http, &url).await {
            Ok(keys) => Check::ok(
                "user pool",
                format!(
                    "{}: {} signing key(s) published",
                    aws.user_pool_id,
                    keys.keys.len()
                ),
            ),
            Err(e) => Check::fail(
                "user pool",
                e.to_string(),
                "check backend.aws.user_pool_id and region, and that the device reaches \
                 cognito-idp over HTTPS",
            ),
        },
        Err(e) => Check::fail("user pool", e.to_string(), "report this as a bug"),
    });
    for store in [&backend.signin, &backend.signup] {
        checks.push(match store.check_exists().await {
            Ok(detail) => Check::ok("bucket", format!("{}: {detail}", store.bucket())),
            Err(e) => Check::fail(
                "bucket",
                e.to_string(),
                "check backend.aws.signin_bucket / signup_bucket against the stack outputs",
            ),
        });
    }
    checks
}
