//! `facegate check-config`: parse and validate the config, listing every problem.

use super::{Failure, GlobalArgs, load_config};
use crate::config::DEFAULT_CONFIG_PATH;

pub fn run(global: &GlobalArgs) -> Result<u8, Failure> {
    load_config(global)?;
    let shown = global
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| DEFAULT_CONFIG_PATH.to_string());
    println!("{shown}: ok");
    Ok(0)
}
