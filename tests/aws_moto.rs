//! The S3 and DynamoDB adapters over real HTTP, against a moto server on 127.0.0.1 (`.ci/run`
//! starts one and sets FACEGATE_MOTO_URL). Without it the tests say so and skip, unless
//! FACEGATE_REQUIRE_MOTO=1 makes that a failure.

mod common;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use facegate::backend::aws::dynamodb::{BY_USER_INDEX, DynamoDirectory, FACE_ID, USERNAME};
use facegate::backend::aws::s3::S3Store;
use facegate::backend::aws::{AwsBackend, AwsConfig};
use facegate::backend::{Directory, FaceRecord, ObjectStore};

/// The moto endpoint, or `None` (with a message) when the tests should skip.
fn moto() -> Option<String> {
    match std::env::var("FACEGATE_MOTO_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("FACEGATE_REQUIRE_MOTO").is_ok() => {
            panic!("FACEGATE_REQUIRE_MOTO is set but FACEGATE_MOTO_URL is not")
        }
        Err(_) => {
            eprintln!("FACEGATE_MOTO_URL is not set (no moto server): skipping");
            None
        }
    }
}

/// A backend whose S3 and DynamoDB point at moto, with a fresh bucket and table.
async fn backend(url: &str, name: &str) -> AwsBackend {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await;
    let config = AwsConfig {
        user_pool_id: "eu-west-1_Pool".into(),
        client_id: "client".into(),
        signin_bucket: format!("{name}-signin"),
        signup_bucket: format!("{name}-signup"),
        faces_table: format!("{name}-faces"),
        s3_endpoint_url: Some(url.into()),
        dynamodb_endpoint_url: Some(url.into()),
        ..Default::default()
    };
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .endpoint_url(url)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(&config.signin_bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&shared)
            .endpoint_url(url)
            .build(),
    );
    let key = |name: &str| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(KeyType::Hash)
            .build()
            .unwrap()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    dynamo
        .create_table()
        .table_name(&config.faces_table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(FACE_ID))
        .attribute_definitions(attribute(FACE_ID))
        .attribute_definitions(attribute(USERNAME))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(BY_USER_INDEX)
                .key_schema(key(USERNAME))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    AwsBackend::from_sdk_config(&config, &shared, "eu-west-1".into()).unwrap()
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

#[tokio::test]
async fn frames_round_trip_through_s3_with_their_metadata_and_go_away_when_deleted() {
    let Some(url) = moto() else { return };
    let backend = backend(&url, &unique("fg")).await;
    let store: &S3Store = &backend.signin;
    let frame = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    store
        .put("signin/abc.jpg", frame.clone(), "image/jpeg")
        .await
        .unwrap();
    let info = store.head("signin/abc.jpg").await.unwrap().expect("stored");
    assert_eq!(info.size, frame.len() as u64);
    assert_eq!(info.content_type, "image/jpeg");
    // S3 keeps whole seconds.
    assert!(
        info.uploaded_at_ms + 1_000 >= before,
        "{info:?} vs {before}"
    );
    assert_eq!(store.get("signin/abc.jpg").await.unwrap(), Some(frame));
    store.delete("signin/abc.jpg").await.unwrap();
    assert_eq!(store.head("signin/abc.jpg").await.unwrap(), None);
    assert_eq!(store.get("signin/abc.jpg").await.unwrap(), None);
}

#[tokio::test]
async fn the_directory_links_faces_and_users_both_ways() {
    let Some(url) = moto() else { return };
    let backend = backend(&url, &unique("fg")).await;
    let directory: &DynamoDirectory = &backend.directory;
    for (face, user) in [
        ("f1", "ana@example.com"),
        ("f2", "ana@example.com"),
        ("f3", "ben@example.com"),
    ] {
        directory
            .put_face(FaceRecord {
                face_id: face.into(),
                username: user.into(),
                indexed_at_ms: 1,
            })
            .await
            .unwrap();
    }
    assert_eq!(
        directory.user_of_face("f2").await.unwrap().as_deref(),
        Some("ana@example.com")
    );
    assert_eq!(directory.user_of_face("nope").await.unwrap(), None);
    let mut ana = directory.faces_of_user("ana@example.com").await.unwrap();
    ana.sort();
    assert_eq!(ana, vec!["f1".to_string(), "f2".to_string()]);
    directory.delete_face("f1").await.unwrap();
    assert_eq!(
        directory.faces_of_user("ana@example.com").await.unwrap(),
        vec!["f2".to_string()]
    );
}

#[tokio::test]
async fn the_doctor_tells_a_bucket_that_exists_from_one_that_does_not() {
    let Some(url) = moto() else { return };
    let backend = backend(&url, &unique("fg")).await;
    // `backend` creates the sign-in bucket only.
    assert_eq!(backend.signin.check_exists().await.unwrap(), "exists");
    match backend.signup.check_exists().await {
        Err(facegate::backend::BackendError::Rejected(why)) => {
            assert!(why.contains(backend.signup.bucket()), "{why}");
            assert!(why.contains("does not exist"), "{why}");
        }
        other => panic!("a missing bucket must be named as missing, got {other:?}"),
    }
}

/// `facegate doctor --json` in AWS mode against moto: the verdict of each AWS line, by name.
fn aws_doctor(
    url: &str,
    name: &str,
    credentials: bool,
) -> (std::collections::BTreeMap<String, Vec<String>>, Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("facegate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[backend]\nkind = \"aws\"\n[backend.aws]\nregion = \"eu-west-1\"\n\
             user_pool_id = \"eu-west-1_Pool\"\nclient_id = \"client\"\n\
             signin_bucket = \"{name}-signin\"\nsignup_bucket = \"{name}-signup\"\n\
             s3_endpoint_url = \"{url}\"\ndynamodb_endpoint_url = \"{url}\"\n\
             operation_timeout_secs = 2.0\nmax_attempts = 1\n",
            dir.path()
        ),
    )
    .unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_facegate"));
    command
        .args(["--config", config.to_str().unwrap(), "doctor", "--json"])
        .args(["--camera-timeout", "1"])
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    if credentials {
        command
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing");
    } else {
        command
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
    }
    let out = command.output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let mut verdicts = std::collections::BTreeMap::<String, Vec<String>>::new();
    for check in report["checks"].as_array().unwrap() {
        verdicts
            .entry(check["name"].as_str().unwrap().to_string())
            .or_default()
            .push(format!("{}: {}", check["verdict"], check["detail"]));
    }
    (verdicts, out.status.code())
}

#[tokio::test]
async fn the_doctor_checks_credentials_and_buckets_in_aws_mode() {
    let Some(url) = moto() else { return };
    let name = unique("doc");
    backend(&url, &name).await; // creates the sign-in bucket only

    let (verdicts, code) = aws_doctor(&url, &name, true);
    assert_eq!(
        code,
        Some(1),
        "the missing bucket fails the doctor: {verdicts:?}"
    );
    let creds = &verdicts["aws creds"];
    assert!(creds[0].starts_with("\"ok\""), "{creds:?}");
    assert!(
        creds[0].contains("region eu-west-1") && creds[0].contains("…ting"),
        "{creds:?}"
    );
    let buckets = &verdicts["bucket"];
    assert_eq!(buckets.len(), 2, "{buckets:?}");
    assert!(buckets[0].starts_with("\"ok\"") && buckets[0].contains(&format!("{name}-signin")));
    assert!(buckets[1].starts_with("\"fail\"") && buckets[1].contains("does not exist"));
    // This machine cannot reach Cognito: the pool's keys are reported unreachable, not assumed.
    assert!(
        verdicts["user pool"][0].starts_with("\"fail\""),
        "{verdicts:?}"
    );

    let (verdicts, code) = aws_doctor(&url, &name, false);
    assert_eq!(code, Some(1));
    assert!(
        verdicts["aws creds"][0].starts_with("\"fail\""),
        "no credentials anywhere: {verdicts:?}"
    );
}

#[tokio::test]
async fn uploader_chosen_s3_metadata_never_picks_whose_face_it_is() {
    use facegate::backend::BackendError;
    use facegate::backend::triggers::index_faces;
    let Some(url) = moto() else { return };
    let name = unique("fg");
    let backend = backend(&url, &name).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .endpoint_url(&url)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(backend.signup.bucket())
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // The seed's attack: an upload whose metadata names the victim.
    let upload = |key: &'static str, bytes: &'static [u8]| {
        s3.put_object()
            .bucket(backend.signup.bucket())
            .key(key)
            .metadata("email", "ana@example.com")
            .metadata("username", "ana@example.com")
            .content_type("image/jpeg")
            .body(bytes.to_vec().into())
            .send()
    };
    upload("signup/ben@example.com/photo.jpg", b"ben's face")
        .await
        .unwrap();
    upload("signup/mallory@example.com/photo.jpg", b"mallory's face")
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket(backend.signup.bucket())
        .key("signup/ben@example.com/photo.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("email"))
            .map(String::as_str),
        Some("ana@example.com"),
        "the metadata is really there"
    );

    let mut w = common::ports::ports(&["ana@example.com", "ben@example.com"], 1_800_000_000_000);
    w.ports.signup = backend.signup.clone();
    w.ports.signin = backend.signin.clone();
    let event = |key: &str| {
        let mut record = aws_lambda_events::event::s3::S3EventRecord::default();
        record.s3.object.key = Some(key.replace('@', "%40"));
        let mut event = aws_lambda_events::event::s3::S3Event::default();
        event.records = vec![record];
        event
    };
    let indexed = index_faces(&event("signup/ben@example.com/photo.jpg"), &w.ports)
        .await
        .unwrap();
    assert_eq!(indexed[0].username, "ben@example.com");
    let refused = index_faces(&event("signup/mallory@example.com/photo.jpg"), &w.ports).await;
    assert!(
        matches!(refused, Err(BackendError::Rejected(_))),
        "{refused:?}"
    );
    assert_eq!(
        w.table.rows(),
        vec![(indexed[0].face_id.clone(), "ben@example.com".to_string())],
        "a face was linked by the metadata"
    );
}
