//! ONNX Runtime through `ort`, loading `libonnxruntime.so` at run time (`load-dynamic`): nothing
//! is downloaded at build time; the library comes from the PyPI `onnxruntime` wheel.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::Session as OrtInner;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use super::{Output, RuntimeOptions, Session};
use crate::vision::{VisionError, models, onnx_graph};

/// The library's file name as `scripts/fetch-models.sh` installs it.
pub const LIBRARY_FILE: &str = "libonnxruntime.so";

/// Where the library is looked for: `ORT_DYLIB_PATH`, then beside the models, then the .deb's place.
pub fn default_library_path(model_dir: &Path) -> PathBuf {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        return PathBuf::from(path);
    }
    [
        model_dir.join(LIBRARY_FILE),
        PathBuf::from("/usr/lib/facegate").join(LIBRARY_FILE),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .unwrap_or_else(|| model_dir.join(LIBRARY_FILE))
}

/// ONNX Runtime allows one environment per process; the first library path wins.
static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn environment(library: &Path) -> Result<ort::environment::Environment, VisionError> {
    ENVIRONMENT
        .get_or_init(|| {
            if !library.is_file() {
                return Err(format!(
                    "ONNX Runtime library not found at {}; run {} or choose runtime = \"tract\"",
                    library.display(),
                    models::FETCH_COMMAND
                ));
            }
            ort::init_from(library)
                .map_err(|e| format!("cannot load {}: {e}", library.display()))?
                .with_name("facegate")
                .with_telemetry(false)
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
        })
        .clone()
        .map_err(VisionError::Runtime)
}

pub struct OrtSession {
    session: OrtInner,
    outputs: Vec<String>,
}

impl OrtSession {
    pub fn load(
        bytes: &[u8],
        name: &'static str,
        options: &RuntimeOptions,
    ) -> Result<Self, VisionError> {
        let library = match &options.ort_library {
            Some(path) => path.clone(),
            None => default_library_path(Path::new(".")),
        };
        let env = environment(&library)?;
        let err = |e: ort::Error| VisionError::Runtime(format!("ONNX Runtime, {name}: {e}"));
        let session = OrtInner::builder(&env)
            .map_err(err)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| err(e.into()))?
            .with_intra_threads(options.threads.max(1))
            .map_err(|e| err(e.into()))?
            .with_inter_threads(1)
            .map_err(|e| err(e.into()))?
            // Prepacked weight copies cost SFace ~22 MB of peak memory and no measurable speed
            // (`facegate bench vision`: embed 20.6 ms without, 23.0 ms with, medians).
            .with_prepacking(false)
            .map_err(|e| err(e.into()))?;
        let session = commit_with_mapped_weights(session, bytes, name)?;
        let outputs = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        Ok(Self { session, outputs })
    }
}

/// Prepares the graph with its large weights written to a file that ONNX Runtime maps
/// (external data), writes the graph beside it, and builds the session from the file. Mapped,
/// the weights are paged in once and never copied, and the f32 weights never sit on this
/// process's heap; from bytes in memory, ONNX Runtime kept its own copy next to ours. The
/// files are deleted once the session is made; the mapping stays valid.
fn commit_with_mapped_weights(
    mut builder: ort::session::builder::SessionBuilder,
    bytes: &[u8],
    name: &'static str,
) -> Result<OrtInner, VisionError> {
    use std::io::Write;
    const WEIGHTS: &str = "weights.bin";
    let io = |e: std::io::Error| {
        VisionError::Runtime(format!(
            "ONNX Runtime, {name}: cannot write the model's weights under {}: {e}",
            std::env::temp_dir().display()
        ))
    };
    let dir = tempfile::Builder::new()
        .prefix("facegate-model-")
        .tempdir()
        .map_err(io)?;
    let file = std::fs::File::create(dir.path().join(WEIGHTS)).map_err(io)?;
    let mut sink = std::io::BufWriter::new(file);
    let mut external = onnx_graph::ExternalWeights::new(WEIGHTS, &mut sink, 4096);
    let (model, summary) = super::prepare(bytes, name, true, Some(&mut external))?;
    super::log_rewrite(name, &summary);
    sink.flush().map_err(io)?;
    drop(sink);
    let graph = dir.path().join("model.onnx");
    std::fs::write(&graph, onnx_graph::encode(&model)).map_err(io)?;
    drop(model);
    builder
        .commit_from_file(&graph)
        .map_err(|e| VisionError::Runtime(format!("ONNX Runtime, {name}: {e}")))
}

impl Session for OrtSession {
    fn run(&mut self, shape: [usize; 4], input: &[f32]) -> Result<Vec<Output>, VisionError> {
        let err = |e: ort::Error| VisionError::Runtime(format!("ONNX Runtime: {e}"));
        let tensor = TensorRef::from_array_view((shape, input)).map_err(err)?;
        let results = self.session.run(ort::inputs![tensor]).map_err(err)?;
        results
            .values()
            .map(|value| {
                let (shape, data) = value.try_extract_tensor::<f32>().map_err(err)?;
                Ok(Output {
                    shape: shape.iter().map(|&d| d.max(0) as usize).collect(),
                    data: data.to_vec(),
                })
            })
            .collect()
    }

    fn output_names(&self) -> &[String] {
        &self.outputs
    }
}
