//! The command line: one file per subcommand. Exit codes are part of the contract:
//! 0 success, 1 a negative answer where a command has one (a denial, a failed doctor check), 2 an error, 78 a bad config.

mod accounts;
mod administer;
mod auth;
mod bench;
mod calibrate;
mod check_config;
mod compare;
mod demo;
mod detect;
mod doctor;
mod enroll;
mod eval_faces;
mod eval_identification;
mod keys;
mod photo_set;
mod relock;
mod run;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::{Args, Parser, Subcommand};

use crate::backend::embedded::EmbeddedBackend;
use crate::backend::open::{BackendPorts, open as open_backend};
use crate::clock::SystemClock;
use crate::config::{BackendKind, Config, ConfigError};
use crate::vision::{FaceEngine, RuntimeKind, VisionError};

/// Exit code for an error that is not a bad config.
pub const EXIT_ERROR: u8 = 2;
/// Exit code for a configuration that cannot be used (EX_CONFIG); systemd does not restart on it.
pub const EXIT_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(
    name = "facegate",
    version,
    about = "A door that opens for the right face: on-device face matching, Cognito-style challenge, relay.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: /etc/facegate/facegate.toml, when it exists]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Inference runtime, overriding vision.runtime: ort or tract
    #[arg(long, global = true, value_name = "RUNTIME")]
    pub runtime: Option<RuntimeKind>,
    /// Threads per inference, overriding vision.threads
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Directory with the model files, overriding vision.model_dir
    #[arg(long, global = true, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Data directory (users, faces, keys), overriding data_dir [default: /var/lib/facegate]
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// More log output (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find faces in a photo: box, score, landmarks and quality verdict for each
    Detect(detect::DetectArgs),
    /// Compare the largest face of two photos: similarity, threshold, match
    Compare(compare::CompareArgs),
    /// Measure verification accuracy on a folder with one sub-folder of photos per person
    EvalFaces(eval_faces::EvalArgs),
    /// Measure open-set identification as at a door: FPIR, FNIR and misidentification with
    /// 95 % intervals, at the configured decision rule, for gallery sizes and photos per person
    EvalIdentification(eval_identification::EvalIdentificationArgs),
    /// Build the decision rule's calibration table from labelled photos (impostor scores)
    Calibrate(calibrate::CalibrateArgs),
    /// Measure speed: `facegate bench vision`
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Enroll a person: create the user, index the face of each photo
    Enroll(enroll::EnrollArgs),
    /// List and manage enrolled users
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Show or rotate the embedded pool's token signing key
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Manage the web console's accounts (docs/web.md)
    #[command(subcommand)]
    Admin(accounts::AdminCommand),
    /// Run the whole sign-in flow on a photo: exit 0 granted, 1 denied, 2 error
    Auth(auth::AuthArgs),
    /// Run the door service until SIGTERM (the camera and relay from the config)
    Run(run::RunArgs),
    /// A scripted morning at the door: replay camera, simulated relay, embedded backend
    Demo(demo::DemoArgs),
    /// Check the configuration file and list every problem
    CheckConfig,
    /// Check this installation: config, data dir, models, camera, GPIO, backend, clock
    /// (exit 1 when a check fails)
    Doctor(doctor::DoctorArgs),
    /// Drive the relay to locked and exit (systemd's ExecStopPost)
    Relock,
}

/// An error with the exit code it should produce.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        let code = match error.downcast_ref::<ConfigError>() {
            Some(_) => EXIT_CONFIG,
            None => EXIT_ERROR,
        };
        Failure { code, error }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        anyhow::Error::from(e).into()
    }
}

impl From<VisionError> for Failure {
    fn from(e: VisionError) -> Self {
        anyhow::Error::from(e).into()
    }
}

/// Runs one command and turns its outcome into an exit code.
pub fn run(cli: Cli) -> ExitCode {
    init_logging(cli.global.verbose);
    let outcome = match cli.command {
        Command::Detect(args) => detect::run(&cli.global, args),
        Command::Compare(args) => compare::run(&cli.global, args),
        Command::EvalFaces(args) => eval_faces::run(&cli.global, args),
        Command::EvalIdentification(args) => eval_identification::run(&cli.global, args),
        Command::Calibrate(args) => calibrate::run(&cli.global, args),
        Command::Bench(args) => bench::run(&cli.global, args),
        Command::Enroll(args) => enroll::run(&cli.global, args),
        Command::Users(command) => users::run(&cli.global, command),
        Command::Keys(command) => keys::run(&cli.global, command),
        Command::Admin(command) => accounts::run(&cli.global, command),
        Command::Auth(args) => auth::run(&cli.global, args),
        Command::Run(args) => run::run(&cli.global, args),
        Command::Demo(args) => demo::run(&cli.global, args),
        Command::CheckConfig => check_config::run(&cli.global),
        Command::Doctor(args) => doctor::run(&cli.global, args),
        Command::Relock => relock::run(&cli.global),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}

/// The config file with the command-line overrides applied.
pub fn load_config(global: &GlobalArgs) -> Result<Config, Failure> {
    let mut config = Config::load(global.config.as_deref())?;
    if let Some(runtime) = global.runtime {
        config.vision.runtime = runtime;
    }
    if let Some(threads) = global.threads {
        config.vision.threads = threads;
    }
    if let Some(dir) = &global.models {
        config.vision.model_dir = Some(dir.clone());
    }
    if let Some(dir) = &global.data {
        config.data_dir = dir.clone();
    }
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems).into());
    }
    Ok(config)
}

/// Loads the face engine as configured.
pub fn load_engine(global: &GlobalArgs) -> Result<FaceEngine, Failure> {
    let config = load_config(global)?;
    Ok(FaceEngine::load(&config.vision)?)
}

/// The embedded backend over the configured data directory, with its face engine.
pub fn open_embedded(global: &GlobalArgs) -> Result<(Config, EmbeddedBackend), Failure> {
    let config = embedded_config(global)?;
    let backend = open_embedded_backend(&config)?;
    Ok((config, backend))
}

/// The config, for a command that manages the embedded user pool (refused in AWS mode).
pub fn embedded_config(global: &GlobalArgs) -> Result<Config, Failure> {
    let config = load_config(global)?;
    if config.backend.kind == BackendKind::Aws {
        return Err(anyhow::anyhow!(
            "this command manages the embedded user pool; with backend.kind = \"aws\" manage \
             users in Cognito (aws cognito-idp admin-disable-user, admin-add-user-to-group, ... \
             see docs/aws.md)"
        )
        .into());
    }
    Ok(config)
}

/// The embedded backend over `config`'s data directory, with a face engine of its own.
pub fn open_embedded_backend(config: &Config) -> anyhow::Result<EmbeddedBackend> {
    let engine = Arc::new(Mutex::new(FaceEngine::load(&config.vision)?));
    Ok(EmbeddedBackend::open(
        &config.data_dir,
        engine,
        &config.backend.embedded,
        config.matching.rule(),
        Arc::new(SystemClock),
    )?)
}

/// The configured backend's ports, for a command that signs in (`auth`): the daemon's store
/// holds AWS's cached keys.
pub async fn backend_ports(config: &Config) -> anyhow::Result<(BackendPorts, sled::Db)> {
    let store = crate::daemon::open_store(&config.data_dir)?;
    let ports = open_backend(config, None, &store, Arc::new(SystemClock)).await?;
    Ok((ports, store))
}

/// A runtime for the async commands.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow::Error::from(e).into())
}

/// Reads a photo file: a regular file only, never more than `limit` bytes of it.
pub fn read_photo(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, Failure> {
    use crate::vision::ImageError;
    crate::vision::image_io::read_file(path, limit).map_err(|e| match e {
        ImageError::Io { .. } | ImageError::NotAFile { .. } => anyhow::Error::from(e).into(),
        other => anyhow::anyhow!("{}: {other}", path.display()).into(),
    })
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?;
    println!("{text}");
    Ok(())
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        // tract warns that it is "only tested" up to opset 18; the models are opset 21 and are
        // checked against ONNX Runtime by the parity tests.
        0 => "warn,tract_onnx=error",
        1 => "info,tract_onnx=error",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FACEGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
