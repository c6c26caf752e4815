//! `facegate enroll`: the administrative enrollment path. Photos with no face, several faces
//! or a face that fails the quality gate are refused with the reason, and nothing is stored.

use std::path::PathBuf;

use clap::Args;

use super::administer::administer;
use super::users::unexpected;
use super::{Failure, GlobalArgs, load_config, print_json, read_photo, runtime};
use crate::admin::{Reply, Request};
use crate::backend::aws::AwsBackend;
use crate::backend::embedded::{enrollable_face, normalize_username};
use crate::config::{BackendKind, Config};
use crate::vision::FaceEngine;

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The user's e-mail address (the username)
    #[arg(long, value_name = "EMAIL")]
    pub user: String,
    /// The user's display name
    #[arg(long, default_value = "")]
    pub name: String,
    /// A photo showing only this person's face (repeat for more)
    #[arg(long = "photo", value_name = "PATH", required = true)]
    pub photos: Vec<PathBuf>,
    /// A group to add the user to (repeat for more); doors admit groups
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// The user exists already: add these faces to that person (without it, enrolling an
    /// existing username is refused)
    #[arg(long)]
    pub add_to_existing: bool,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &GlobalArgs, args: EnrollArgs) -> Result<u8, Failure> {
    let config = load_config(global)?;
    let photos = args
        .photos
        .iter()
        .map(|p| read_photo(p, config.max_image_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    if config.backend.kind == BackendKind::Aws {
        return enroll_aws(&config, &args, &photos);
    }
    let request = Request::Enroll {
        user: args.user.clone(),
        name: args.name.clone(),
        photos,
        groups: args.groups.clone(),
        add_to_existing: args.add_to_existing,
    };
    let report = match administer(global, request)? {
        Reply::Enrolled { report } => report,
        other => return Err(unexpected(&other)),
    };
    if args.json {
        print_json(&report)?;
        return Ok(0);
    }
    let verb = if report.created {
        "enrolled"
    } else {
        "added faces to"
    };
    println!(
        "{verb} {} ({}), groups [{}]",
        report.user.username,
        report.user.name,
        report
            .user
            .groups
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    for id in &report.face_ids {
        println!("  FaceId {id}");
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(0)
}

/// Checks every photo on this device (nothing is created when one is refused), then creates
/// the user in Cognito and uploads the photos for the index-faces Lambda.
fn enroll_aws(config: &Config, args: &EnrollArgs, photos: &[Vec<u8>]) -> Result<u8, Failure> {
    let mut engine = FaceEngine::load(&config.vision)?;
    for (i, photo) in photos.iter().enumerate() {
        enrollable_face(&mut engine, photo)
            .map_err(|e| anyhow::anyhow!("photo {} ({}): {e}", i + 1, args.photos[i].display()))?;
    }
    let username = normalize_username(&args.user).map_err(anyhow::Error::from)?;
    let report = runtime()?.block_on(async {
        let aws = AwsBackend::connect(&config.backend.aws).await?;
        let report = aws
            .enroll(
                &username,
                &args.name,
                photos,
                &args.groups,
                args.add_to_existing,
                AWS_INDEX_WAIT,
            )
            .await?;
        anyhow::Ok(report)
    })?;
    if args.json {
        print_json(&report)?;
    } else {
        let verb = if report.created { "created" } else { "updated" };
        println!(
            "{verb} {} in Cognito, groups [{}]; {} photo(s) uploaded",
            report.username,
            report.groups.join(", "),
            report.uploaded.len()
        );
        for id in &report.face_ids {
            println!("  FaceId {id}");
        }
    }
    if report.pending > 0 {
        eprintln!(
            "warning: {} photo(s) not indexed after {} s: check the index-faces Lambda's logs \
             (docs/aws.md)",
            report.pending,
            AWS_INDEX_WAIT.as_secs()
        );
        return Ok(1);
    }
    Ok(0)
}

/// How long AWS enrollment waits for the Lambda to index the photos.
const AWS_INDEX_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
