//! `facegate doctor`: checks an installation in one command — config, data directory, models,
//! camera, GPIO, backend, each sink, clock — and says for each line what is wrong and how to fix it.
//! Exit 0 when nothing failed (warnings allowed), 1 when a check failed.
//!
//! The checks themselves live in [`checks`]; this file is the report: verdicts, the text and
//! JSON renderings, and the order the checks run in.

mod backend;
mod checks;
mod sinks;

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{Failure, GlobalArgs, print_json};
use crate::config::DEFAULT_CONFIG_PATH;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the checklist as JSON
    #[arg(long)]
    pub json: bool,
    /// Also unlock the relay for half a second (someone should be at the door)
    #[arg(long)]
    pub pulse: bool,
    /// Seconds to wait for the camera's first frame
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub camera_timeout: u64,
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    /// Works, but not as a door in service should (a simulated relay, a clock in the past).
    Warn,
    Fail,
    /// Not checked, because something it depends on failed (or it does not apply).
    Skip,
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// What to do about it, when the verdict is not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self::new(name, Verdict::Ok, detail, None::<String>)
    }

    pub fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Verdict::Warn, detail, Some(fix))
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Verdict::Fail, detail, Some(fix))
    }

    pub fn skip(name: &'static str, why: impl Into<String>) -> Self {
        Self::new(name, Verdict::Skip, why, None::<String>)
    }

    fn new(
        name: &'static str,
        verdict: Verdict,
        detail: impl Into<String>,
        fix: Option<impl Into<String>>,
    ) -> Self {
        Self {
            name,
            verdict,
            detail: detail.into(),
            fix: fix.map(Into::into),
        }
    }
}

/// The whole checklist.
#[derive(Debug, Serialize)]
pub struct Report {
    pub config: PathBuf,
    pub passed: bool,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(config: PathBuf, checks: Vec<Check>) -> Self {
        let passed = checks.iter().all(|c| c.verdict != Verdict::Fail);
        Self {
            config,
            passed,
            checks,
        }
    }

    fn count(&self, verdict: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == verdict).count()
    }

    /// The human checklist: one line per check, its fix indented below.
    pub fn render(&self) -> String {
        let mut out = format!("facegate doctor: {}\n", self.config.display());
        for check in &self.checks {
            let mark = match check.verdict {
                Verdict::Ok => "ok  ",
                Verdict::Warn => "WARN",
                Verdict::Fail => "FAIL",
                Verdict::Skip => "skip",
            };
            out += &format!("  {mark}  {:<9} {}\n", check.name, check.detail);
            if let Some(fix) = &check.fix {
                out += &format!("        {:<9} fix: {fix}\n", "");
            }
        }
        let (failed, warned) = (self.count(Verdict::Fail), self.count(Verdict::Warn));
        out += &match (failed, warned) {
            (0, 0) => "all checks passed\n".to_string(),
            (0, w) => format!("passed with {w} warning(s)\n"),
            (f, w) => format!("{f} check(s) failed, {w} warning(s)\n"),
        };
        out
    }
}

pub fn run(global: &GlobalArgs, args: DoctorArgs) -> Result<u8, Failure> {
    let config_path = global
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let checks = super::runtime()?.block_on(checks::run_all(global, &args));
    let report = Report::new(config_path, checks);
    if args.json {
        print_json(&report)?;
    } else {
        print!("{}", report.render());
    }
    Ok(if report.passed { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_fails_the_report_and_a_warning_does_not() {
        let warned = Report::new(
            "c.toml".into(),
            vec![
                Check::ok("config", "valid"),
                Check::warn("relay", "simulated", "set relay.kind"),
            ],
        );
        assert!(warned.passed);
        assert!(warned.render().ends_with("passed with 1 warning(s)\n"));
        let failed = Report::new(
            "c.toml".into(),
            vec![
                Check::fail("camera", "/dev/video0: no such device", "plug it in"),
                Check::skip("gpio", "config invalid"),
            ],
        );
        assert!(!failed.passed);
        let text = failed.render();
        assert!(text.contains("FAIL  camera    /dev/video0: no such device\n"));
        assert!(text.contains("fix: plug it in\n"));
        assert!(text.ends_with("1 check(s) failed, 0 warning(s)\n"));
    }
}
