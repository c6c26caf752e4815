//! facegate: a door that opens for the right face.
//!
//! Module map (see docs/architecture.md for the data flow):

/// Command-line interface, one file per subcommand.
pub mod cli;
/// TOML configuration, validated.
pub mod config;
/// The on-device face engine: detect, align, quality, embed, 1:N gallery.
pub mod vision;
