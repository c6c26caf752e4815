//! `facegate enroll`: the administrative enrollment path. Photos with no face, several faces
//! or a face that fails the quality gate are refused with the reason, and nothing is stored.

use std::path::PathBuf;

use clap::Args;

use super::{Failure, GlobalArgs, open_embedded, print_json, read_photo, runtime};

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
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &GlobalArgs, args: EnrollArgs) -> Result<u8, Failure> {
    let (config, backend) = open_embedded(global)?;
    let limit = config.backend.embedded.max_image_bytes;
    let photos = args
        .photos
        .iter()
        .map(|p| read_photo(p, limit))
        .collect::<Result<Vec<_>, _>>()?;
    let report = runtime()?
        .block_on(backend.enroll(&args.user, &args.name, &photos, &args.groups))
        .map_err(anyhow::Error::from)?;
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
