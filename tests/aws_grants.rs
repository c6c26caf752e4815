//! The SAM template's IAM grants against the calls the code makes: each identity (the door
//! device, the enrolling administrator, the trigger Lambda) is granted every action its code
//! path calls and nothing else. The lists below name the calls (docs/aws.md, "IAM"); the e2e
//! test (scripts/aws-e2e.sh) runs the same identities against an emulator that enforces IAM.

use std::collections::BTreeSet;
use std::path::Path;

fn template() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/aws/template.yaml"))
        .unwrap()
}

/// The `Action`s granted under the resource `logical_id`, as `action resource-hint` pairs
/// (the hint: the last path segment of the resource, enough to tell a table from its index).
fn grants(logical_id: &str) -> BTreeSet<String> {
    let text = template();
    let start = text
        .find(&format!("\n  {logical_id}:\n"))
        .unwrap_or_else(|| panic!("no {logical_id} in the template"));
    let body: Vec<&str> = text[start + 1..]
        .lines()
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("   "))
        .collect();
    let mut out = BTreeSet::new();
    let mut actions: Vec<String> = Vec::new();
    let mut in_actions = false;
    for line in body {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Action:") {
            actions.clear();
            let rest = rest.trim();
            in_actions = rest.is_empty();
            if !rest.is_empty() {
                actions.push(rest.to_string());
            }
        } else if in_actions && t.starts_with("- ") && t.contains(':') && !t.contains('!') {
            actions.push(t[2..].to_string());
        } else if let Some(rest) = t.strip_prefix("Resource:") {
            in_actions = false;
            let hint = if rest.contains("/index/ByUser") {
                "index"
            } else if rest.contains("LedgerTable") {
                "ledger"
            } else {
                "main"
            };
            for a in actions.drain(..) {
                out.insert(format!("{a} {hint}"));
            }
        } else if !t.starts_with("- ") {
            in_actions = false;
        }
    }
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_device_is_granted_exactly_what_the_device_flow_calls() {
    // identify: SearchFacesByImage, the nearest face's owner (GetItem), that user's faces
    // (Query on ByUser); then the frame's upload. Cognito's sign-in calls need no IAM.
    assert_eq!(
        grants("DevicePolicy"),
        set(&[
            "dynamodb:GetItem main",
            "dynamodb:Query index",
            "rekognition:SearchFacesByImage main",
            "s3:PutObject main",
        ])
    );
}

#[test]
fn enrollment_is_granted_exactly_what_facegate_enroll_calls() {
    assert_eq!(
        grants("EnrollmentPolicy"),
        set(&[
            "cognito-idp:AdminAddUserToGroup main",
            "cognito-idp:AdminCreateUser main",
            "cognito-idp:AdminSetUserPassword main",
            "dynamodb:Query index",
            "s3:PutObject main",
        ])
    );
}

#[test]
fn the_lambda_is_granted_exactly_what_the_triggers_call() {
    assert_eq!(
        grants("TriggerFunction"),
        set(&[
            "cognito-idp:AdminGetUser main",
            "dynamodb:DeleteItem ledger",
            "dynamodb:GetItem ledger",
            "dynamodb:PutItem ledger",
            "dynamodb:PutItem main",
            "dynamodb:Query index",
            "dynamodb:UpdateItem ledger",
            "rekognition:DeleteFaces main",
            "rekognition:IndexFaces main",
            "rekognition:SearchFacesByImage main",
            "s3:DeleteObject main",
            "s3:GetObject main",
            "s3:ListBucket main",
        ])
    );
}

#[test]
fn buckets_refuse_plain_http_and_the_invoke_permission_names_the_account() {
    let text = template();
    assert_eq!(text.matches("aws:SecureTransport: \"false\"").count(), 2);
    assert!(text.contains("SourceAccount: !Ref AWS::AccountId"));
    assert!(
        text.contains("DoorGroup&{Group}"),
        "group names with - or _ stay valid ids"
    );
    assert!(
        text.contains("TimeToLiveSpecification"),
        "the ledger expires"
    );
    assert!(text.contains("ExpirationInDays: !Ref EnrollmentPhotoRetentionDays"));
}
