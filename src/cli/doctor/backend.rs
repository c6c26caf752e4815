//! The backend lines of `facegate doctor`: the embedded user store (opened only when it is this
//! user's), or AWS — region, credentials, the user pool's published keys, the two buckets.

use std::sync::{Arc, Mutex};

use super::Check;
use super::checks::{RUN_AS_SERVICE, StoreAccess, is_locked, store_access};
use crate::backend::aws::{AwsBackend, jwks};
use crate::backend::embedded::EmbeddedBackend;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::matching::{Calibration, DecisionRule, MatchingConfig};
use crate::vision::FaceEngine;

/// The embedded user store, and the decision rule's threshold at its size.
pub fn embedded(config: &Config, engine: Option<FaceEngine>) -> Vec<Check> {
    const NAME: &str = "backend";
    let Some(engine) = engine else {
        return vec![Check::skip(NAME, "needs the models")];
    };
    match store_access(&config.data_dir, "backend.sled") {
        StoreAccess::Absent => {
            return vec![
                Check::warn(
                    NAME,
                    "embedded: nobody is enrolled yet",
                    "enroll someone: facegate enroll --user EMAIL --name NAME --photo PATH \
                     --group GROUP",
                ),
                matching(&config.matching, 0, 0),
            ];
        }
        StoreAccess::OwnedByOther(uid) => {
            return vec![Check::warn(
                NAME,
                format!("embedded: the user store belongs to uid {uid}: not opened"),
                RUN_AS_SERVICE,
            )];
        }
        StoreAccess::Usable => {}
    }
    let backend = match EmbeddedBackend::open(
        &config.data_dir,
        Arc::new(Mutex::new(engine)),
        &config.backend.embedded,
        config.matching.rule(),
        Arc::new(SystemClock),
    ) {
        Ok(backend) => backend,
        Err(e) if is_locked(&e.to_string()) => {
            return vec![Check::ok(
                NAME,
                "embedded: the user store is in use by the running service",
            )];
        }
        Err(e) => {
            return vec![Check::fail(
                NAME,
                e.to_string(),
                "restore the data directory from a backup (docs/operations.md)",
            )];
        }
    };
    let users = match backend.users.list() {
        Ok(users) => users,
        Err(e) => {
            return vec![Check::fail(
                NAME,
                e.to_string(),
                "restore the data directory",
            )];
        }
    };
    let faces = backend.faces.len();
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
    let users_check = if closed.is_empty() {
        Check::ok(NAME, detail)
    } else {
        Check::warn(
            NAME,
            format!("{detail}; nobody may open door(s) {}", closed.join(", ")),
            "add someone to a door's allowed group: facegate users add-group EMAIL GROUP",
        )
    };
    vec![users_check, matching(&config.matching, faces, users.len())]
}

/// The threshold the door decides with at `faces` enrolled faces, and whether a fixed one lets
/// in more strangers than `target_fpir`.
pub fn matching(config: &MatchingConfig, faces: usize, people: usize) -> Check {
    const NAME: &str = "matching";
    let table = Calibration::sface();
    let needed = DecisionRule::sface(config.target_fpir, config.margin).threshold(faces);
    let at = format!("{faces} face(s) of {people} people");
    let Some(fixed) = config.fixed_threshold else {
        return Check::ok(
            NAME,
            format!(
                "threshold {needed:.3} at {at} (target FPIR {}, margin {})",
                config.target_fpir, config.margin
            ),
        );
    };
    // The chance that any of the enrolled faces matches a stranger at the fixed threshold.
    let rate = table.rate_at(fixed);
    let fpir = 1.0 - (1.0 - rate).powf(faces.max(1) as f64);
    let detail = format!(
        "fixed threshold {fixed:.3} at {at}: about {:.3} % of strangers' attempts let in",
        fpir * 100.0
    );
    if fixed < needed {
        Check::warn(
            NAME,
            detail,
            format!(
                "the target FPIR {} needs {needed:.3} at this size: raise \
                 matching.fixed_threshold to {needed:.3} or remove it (the calibrated \
                 threshold follows the enrolled count)",
                config.target_fpir
            ),
        )
    } else {
        Check::ok(NAME, detail)
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
