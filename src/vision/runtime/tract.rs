//! tract, pure Rust. tract plans are fastest for a fixed input shape, so one optimized plan is
//! kept per input size (a camera has one; a folder of photos has a few), in a small LRU.

use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use super::{Output, RuntimeOptions, Session};
use crate::vision::VisionError;

/// How many input sizes keep an optimized plan.
const PLAN_CACHE: usize = 8;

type Plan = std::sync::Arc<TypedRunnableModel>;

pub struct TractSession {
    name: String,
    model: InferenceModel,
    plans: Vec<([usize; 4], Plan)>,
    outputs: Vec<String>,
}

impl TractSession {
    pub fn load(
        proto: &ModelProto,
        name: &str,
        _options: &RuntimeOptions,
    ) -> Result<Self, VisionError> {
        // tract returns outputs in the graph's declared order.
        let outputs = proto
            .graph
            .iter()
            .flat_map(|g| g.output.iter().map(|o| o.name.clone()))
            .collect();
        let model = tract_onnx::onnx()
            .model_for_proto_model(proto)
            .map_err(|e| VisionError::Runtime(format!("tract, {name}: {e:#}")))?;
        Ok(Self {
            name: name.to_string(),
            model,
            plans: Vec::new(),
            outputs,
        })
    }

    fn plan(&mut self, shape: [usize; 4]) -> Result<Plan, VisionError> {
        if let Some(pos) = self.plans.iter().position(|(s, _)| *s == shape) {
            let entry = self.plans.remove(pos);
            let plan = entry.1.clone();
            self.plans.push(entry);
            return Ok(plan);
        }
        let plan = self
            .model
            .clone()
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| {
                VisionError::Runtime(format!("tract, {} at {shape:?}: {e:#}", self.name))
            })?;
        if self.plans.len() == PLAN_CACHE {
            self.plans.remove(0);
        }
        self.plans.push((shape, plan.clone()));
        Ok(plan)
    }
}

impl Session for TractSession {
    fn run(&mut self, shape: [usize; 4], input: &[f32]) -> Result<Vec<Output>, VisionError> {
        let plan = self.plan(shape)?;
        let tensor = Tensor::from_shape(&shape, input)
            .map_err(|e| VisionError::Runtime(format!("tract input: {e:#}")))?;
        let results = plan
            .run(tvec!(tensor.into()))
            .map_err(|e| VisionError::Runtime(format!("tract, {}: {e:#}", self.name)))?;
        results
            .iter()
            .map(|value| {
                let view = value
                    .to_plain_array_view::<f32>()
                    .map_err(|e| VisionError::Runtime(format!("tract output: {e:#}")))?;
                Ok(Output {
                    shape: view.shape().to_vec(),
                    data: view.iter().copied().collect(),
                })
            })
            .collect()
    }

    fn output_names(&self) -> &[String] {
        &self.outputs
    }
}
