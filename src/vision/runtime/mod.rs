//! The inference runtime behind the face models: ONNX Runtime (fast, the default) or tract
//! (pure Rust, for machines without an ONNX Runtime build, and an independent cross-check).
//!
//! Both take the graph already rewritten by [`super::onnx_graph`] and run one f32 NCHW input.

mod onnxruntime;
mod tract;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tract_onnx::pb::ModelProto;

pub use onnxruntime::default_library_path;

use super::{VisionError, onnx_graph};

/// Which runtime executes the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// ONNX Runtime, loaded from its shared library at run time.
    #[default]
    Ort,
    /// tract, compiled in.
    Tract,
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuntimeKind::Ort => "ort",
            RuntimeKind::Tract => "tract",
        })
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ort" | "onnxruntime" => Ok(RuntimeKind::Ort),
            "tract" => Ok(RuntimeKind::Tract),
            other => Err(format!(
                "unknown runtime `{other}` (expected `ort` or `tract`)"
            )),
        }
    }
}

/// How to build sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeOptions {
    pub kind: RuntimeKind,
    /// Threads one inference may use.
    pub threads: usize,
    /// ONNX Runtime's shared library; `None` searches the default places.
    pub ort_library: Option<PathBuf>,
}

/// One output of a model run, row-major.
#[derive(Debug, Clone)]
pub struct Output {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A loaded model that maps one `[1, C, H, W]` f32 input to its outputs, in graph order.
pub trait Session: Send {
    fn run(&mut self, shape: [usize; 4], input: &[f32]) -> Result<Vec<Output>, VisionError>;
    /// Output names in the order [`Session::run`] returns them.
    fn output_names(&self) -> &[String];
}

/// Builds a session from a model's verified ONNX bytes with the chosen runtime; each runtime
/// rewrites the graph as it needs (see [`super::onnx_graph`]).
pub fn load(
    bytes: &[u8],
    name: &'static str,
    options: &RuntimeOptions,
) -> Result<Box<dyn Session>, VisionError> {
    match options.kind {
        RuntimeKind::Ort => Ok(Box::new(onnxruntime::OrtSession::load(
            bytes, name, options,
        )?)),
        RuntimeKind::Tract => {
            // Only ONNX Runtime gains from the PRelu rewrite (measured: tract runs SFace no
            // faster), and tract reads its weights from the graph.
            let (model, summary) = prepare(bytes, name, false, None)?;
            log_rewrite(name, &summary);
            Ok(Box::new(tract::TractSession::load(&model, name, options)?))
        }
    }
}

fn prepare(
    bytes: &[u8],
    name: &'static str,
    expand_prelu: bool,
    external: Option<&mut onnx_graph::ExternalWeights>,
) -> Result<(ModelProto, onnx_graph::RewriteSummary), VisionError> {
    onnx_graph::prepare(bytes, expand_prelu, external)
        .map_err(|source| VisionError::ModelGraph { name, source })
}

fn log_rewrite(name: &str, summary: &onnx_graph::RewriteSummary) {
    tracing::debug!(
        name,
        dequantized = summary.dequantized,
        dropped_inputs = summary.dropped_inputs,
        prelus_expanded = summary.prelus_expanded,
        "model graph rewritten"
    );
}
