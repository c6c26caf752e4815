//! Rewrites the shipped ONNX graphs into a form both runtimes accept.
//!
//! The face models are block-quantized (`DequantizeLinear` with `block_size`), which neither
//! tract nor ONNX Runtime implements. Every `DequantizeLinear` whose inputs are all constants is
//! folded into an f32 initializer here, once, at load time; graph inputs that no node reads are
//! dropped; and the fixed input/output shape annotations are freed so the detector takes any size.
//!
//! One optional rewrite is for speed: ONNX Runtime runs `PRelu` with a per-channel slope through
//! a slow broadcasting kernel that also forces layout reorders around every convolution; the
//! same function written as `s·x + (1−s)·Relu(x)` runs in kernels it fuses, and SFace takes
//! about half the time.

use std::collections::{HashMap, HashSet};

use prost::Message;
use tract_onnx::pb::tensor_proto::{self, DataType};
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
use tract_onnx::pb::type_proto;
use tract_onnx::pb::{
    AttributeProto, ModelProto, NodeProto, StringStringEntryProto, TensorProto, ValueInfoProto,
};

/// Why a graph could not be rewritten.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("not a valid ONNX model: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("the model has no graph")]
    NoGraph,
    #[error("DequantizeLinear `{node}`: {problem}")]
    Dequantize { node: String, problem: String },
    #[error("cannot write the external weights: {0}")]
    Weights(#[from] std::io::Error),
}

/// Where folded weights go instead of the graph: ONNX external data in `file_name`, written
/// to `sink` as little-endian f32. ONNX Runtime maps such a file rather than copying it, and
/// the f32 weights never sit on the heap of this process (SFace's are 38 MB).
pub struct ExternalWeights<'a> {
    pub file_name: &'a str,
    pub sink: &'a mut dyn std::io::Write,
    /// Tensors with fewer values stay inline.
    pub min_values: usize,
    written: u64,
}

impl<'a> ExternalWeights<'a> {
    pub fn new(file_name: &'a str, sink: &'a mut dyn std::io::Write, min_values: usize) -> Self {
        Self {
            file_name,
            sink,
            min_values,
            written: 0,
        }
    }

    /// Writes `values` and points `tensor` at them.
    fn store(
        &mut self,
        tensor: &mut TensorProto,
        values: impl Iterator<Item = f32>,
    ) -> std::io::Result<()> {
        let offset = self.written;
        for value in values {
            self.sink.write_all(&value.to_le_bytes())?;
            self.written += 4;
        }
        let entry = |key: &str, value: String| StringStringEntryProto {
            key: key.into(),
            value,
        };
        tensor.data_location = Some(tensor_proto::DataLocation::External as i32);
        tensor.external_data = vec![
            entry("location", self.file_name.into()),
            entry("offset", offset.to_string()),
            entry("length", (self.written - offset).to_string()),
        ];
        Ok(())
    }
}

/// What the rewrite changed, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RewriteSummary {
    pub dequantized: usize,
    pub dropped_inputs: usize,
    pub prelus_expanded: usize,
}

/// Decodes `bytes`, rewrites the graph and returns the model ready for either runtime.
/// `expand_prelu` turns constant-slope `PRelu` into elementwise ops (see the module docs);
/// with `external`, large folded weights are written there instead of into the graph.
pub fn prepare(
    bytes: &[u8],
    expand_prelu: bool,
    external: Option<&mut ExternalWeights>,
) -> Result<(ModelProto, RewriteSummary), GraphError> {
    let mut model = ModelProto::decode(bytes)?;
    let mut summary = rewrite(&mut model, external)?;
    if expand_prelu {
        summary.prelus_expanded = expand_prelus(&mut model);
    }
    Ok((model, summary))
}

/// Serialises a model for runtimes that take bytes (ONNX Runtime).
pub fn encode(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

fn rewrite(
    model: &mut ModelProto,
    mut external: Option<&mut ExternalWeights>,
) -> Result<RewriteSummary, GraphError> {
    let graph = model.graph.as_mut().ok_or(GraphError::NoGraph)?;
    let mut summary = RewriteSummary::default();

    let mut constants: HashMap<String, TensorProto> = graph
        .initializer
        .drain(..)
        .map(|t| (t.name.clone(), t))
        .collect();
    // How many nodes read each value: a quantized weight is freed as soon as its last reader
    // is folded, so the f32 copy never sits beside every int8 original (peak memory at start).
    let mut readers: HashMap<String, usize> = HashMap::new();
    for name in graph.node.iter().flat_map(|n| n.input.iter()) {
        *readers.entry(name.clone()).or_default() += 1;
    }
    let mut kept_nodes = Vec::with_capacity(graph.node.len());
    for node in graph.node.drain(..) {
        let foldable = node.op_type == "DequantizeLinear"
            && node.domain.is_empty()
            && node
                .input
                .iter()
                .all(|name| name.is_empty() || constants.contains_key(name));
        if foldable {
            let folded = dequantize(&node, &constants, external.as_deref_mut())?;
            for input in &node.input {
                if let Some(count) = readers.get_mut(input) {
                    *count -= 1;
                    if *count == 0 && !graph.output.iter().any(|o| &o.name == input) {
                        constants.remove(input);
                    }
                }
            }
            constants.insert(folded.name.clone(), folded);
            summary.dequantized += 1;
        } else {
            kept_nodes.push(node);
        }
    }
    graph.node = kept_nodes;

    let used: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(graph.output.iter().map(|o| o.name.as_str()))
        .collect();
    // Keep only the initializers some node still reads (the quantized originals go).
    let mut initializers: Vec<TensorProto> = constants
        .into_values()
        .filter(|t| used.contains(t.name.as_str()))
        .collect();
    initializers.sort_by(|a, b| a.name.cmp(&b.name));
    let constant_names: HashSet<String> = initializers.iter().map(|t| t.name.clone()).collect();

    let before = graph.input.len();
    graph
        .input
        .retain(|i| used.contains(i.name.as_str()) && !constant_names.contains(&i.name));
    summary.dropped_inputs = before - graph.input.len();
    graph.initializer = initializers;

    // Free the spatial dimensions of the inputs and every output shape: the graphs are fully
    // convolutional and the annotations only pin them to 640x640 / fixed anchor counts.
    for input in &mut graph.input {
        free_dims(input, |axis| axis >= 2);
    }
    for output in &mut graph.output {
        free_dims(output, |axis| axis >= 1);
    }
    graph.value_info.clear();
    Ok(summary)
}

/// Rewrites every `PRelu` whose slope is a float constant as `s·x + (1−s)·Relu(x)`, which is
/// exactly PRelu for any slope: x > 0 gives s·x + (1−s)·x = x, x ≤ 0 gives s·x.
fn expand_prelus(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let slope_names: HashSet<&str> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "PRelu" && n.input.len() == 2)
        .map(|n| n.input[1].as_str())
        .collect();
    let slopes: HashMap<String, (Vec<i64>, Vec<f32>)> = graph
        .initializer
        .iter()
        .filter(|t| slope_names.contains(t.name.as_str()))
        .filter_map(|t| Some((t.name.clone(), (t.dims.clone(), floats(t).ok()?))))
        .collect();
    let mut expanded = 0;
    let mut nodes = Vec::with_capacity(graph.node.len());
    for node in graph.node.drain(..) {
        let slope = (node.op_type == "PRelu" && node.input.len() == 2 && node.output.len() == 1)
            .then(|| slopes.get(&node.input[1]))
            .flatten();
        let Some((dims, slope)) = slope else {
            nodes.push(node);
            continue;
        };
        let (x, y) = (&node.input[0], &node.output[0]);
        let name = |suffix: &str| format!("{y}__prelu_{suffix}");
        let constant = |suffix: &str, data: Vec<f32>| TensorProto {
            name: name(suffix),
            dims: dims.clone(),
            data_type: DataType::Float as i32,
            float_data: data,
            ..Default::default()
        };
        graph.initializer.push(constant("s", slope.clone()));
        graph.initializer.push(constant(
            "one_minus_s",
            slope.iter().map(|s| 1.0 - s).collect(),
        ));
        let op = |op: &str, inputs: [&str; 2], output: String| NodeProto {
            op_type: op.into(),
            name: output.clone(),
            input: inputs
                .iter()
                .filter(|i| !i.is_empty())
                .map(|i| i.to_string())
                .collect(),
            output: vec![output],
            ..Default::default()
        };
        nodes.push(op("Mul", [x, &name("s")], name("scaled")));
        nodes.push(op("Relu", [x, ""], name("relu")));
        nodes.push(op(
            "Mul",
            [&name("relu"), &name("one_minus_s")],
            name("relu_scaled"),
        ));
        nodes.push(op(
            "Add",
            [&name("scaled"), &name("relu_scaled")],
            y.clone(),
        ));
        expanded += 1;
    }
    graph.node = nodes;
    expanded
}

fn free_dims(value: &mut ValueInfoProto, free: impl Fn(usize) -> bool) {
    let name = value.name.clone();
    let Some(type_proto::Value::TensorType(tensor)) =
        value.r#type.as_mut().and_then(|t| t.value.as_mut())
    else {
        return;
    };
    if let Some(shape) = tensor.shape.as_mut() {
        for (axis, dim) in shape.dim.iter_mut().enumerate() {
            if free(axis) {
                *dim = Dimension {
                    denotation: String::new(),
                    value: Some(dimension::Value::DimParam(format!("{name}_d{axis}"))),
                };
            }
        }
    }
}

/// `y = (x - zero_point) * scale`, per tensor, per axis, or per block along `axis`.
fn dequantize(
    node: &NodeProto,
    constants: &HashMap<String, TensorProto>,
    external: Option<&mut ExternalWeights>,
) -> Result<TensorProto, GraphError> {
    let fail = |problem: String| GraphError::Dequantize {
        node: node.name.clone(),
        problem,
    };
    let get = |i: usize| {
        node.input
            .get(i)
            .filter(|n| !n.is_empty())
            .and_then(|n| constants.get(n))
    };
    let x = get(0).ok_or_else(|| fail("missing quantized input".into()))?;
    let scale = get(1).ok_or_else(|| fail("missing scale".into()))?;
    let output = node
        .output
        .first()
        .ok_or_else(|| fail("no output".into()))?;

    let values = Quantized::of(x).map_err(&fail)?;
    let scales = floats(scale).map_err(&fail)?;
    let zero_points = match get(2) {
        Some(zp) => {
            let zp = Quantized::of(zp).map_err(&fail)?;
            (0..zp.len()).map(|i| zp.get(i)).collect()
        }
        None => vec![0; scales.len()],
    };
    if zero_points.len() != scales.len() {
        return Err(fail("zero point and scale differ in size".into()));
    }
    let dims: Vec<usize> = x.dims.iter().map(|&d| d as usize).collect();
    if dims.iter().product::<usize>() != values.len() {
        return Err(fail("data does not match its dims".into()));
    }
    let rank = dims.len() as i64;
    let axis = int_attribute(node, "axis").unwrap_or(1);
    let axis = if axis < 0 { axis + rank } else { axis };
    let block = int_attribute(node, "block_size").unwrap_or(0);

    let scale_index: Box<dyn Fn(usize) -> usize> = if scales.len() == 1 && block == 0 {
        Box::new(|_| 0)
    } else {
        if axis < 0 || axis >= rank {
            return Err(fail(format!("axis {axis} out of range for rank {rank}")));
        }
        let axis = axis as usize;
        let along = dims[axis];
        let inner: usize = dims[axis + 1..].iter().product();
        if block == 0 {
            if scales.len() != along {
                return Err(fail("per-axis scale has the wrong length".into()));
            }
            Box::new(move |i| (i / inner) % along)
        } else {
            let block = block as usize;
            let blocks = along.div_ceil(block);
            let outer: usize = dims[..axis].iter().product();
            if scales.len() != outer * blocks * inner {
                return Err(fail(format!(
                    "block scale has {} values, expected {}",
                    scales.len(),
                    outer * blocks * inner
                )));
            }
            Box::new(move |i| {
                let o = i / (along * inner);
                let a = (i / inner) % along;
                (o * blocks + a / block) * inner + i % inner
            })
        }
    };

    let folded = (0..values.len()).map(|i| {
        let s = scale_index(i);
        (values.get(i) - zero_points[s]) as f32 * scales[s]
    });
    let mut tensor = TensorProto {
        dims: x.dims.clone(),
        data_type: DataType::Float as i32,
        name: output.clone(),
        ..Default::default()
    };
    match external {
        Some(external) if values.len() >= external.min_values => {
            external.store(&mut tensor, folded)?
        }
        _ => tensor.float_data = folded.collect(),
    }
    Ok(tensor)
}

fn int_attribute(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute
        .iter()
        .find(|a: &&AttributeProto| a.name == name)
        .map(|a| a.i)
}

/// The integers of a quantized tensor, read in place (no widened copy of a large weight).
enum Quantized<'a> {
    Int8(&'a [u8]),
    Uint8(&'a [u8]),
    Int32(&'a [i32]),
}

impl<'a> Quantized<'a> {
    fn of(t: &'a TensorProto) -> Result<Self, String> {
        let kind = DataType::try_from(t.data_type).unwrap_or(DataType::Undefined);
        let from_raw = !t.raw_data.is_empty();
        match kind {
            DataType::Int8 if from_raw => Ok(Self::Int8(&t.raw_data)),
            DataType::Uint8 if from_raw => Ok(Self::Uint8(&t.raw_data)),
            DataType::Int8 | DataType::Uint8 => Ok(Self::Int32(&t.int32_data)),
            other => Err(format!(
                "`{}` is {other:?}; only int8 and uint8 are supported",
                t.name
            )),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Int8(v) | Self::Uint8(v) => v.len(),
            Self::Int32(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> i32 {
        match self {
            Self::Int8(v) => v[i] as i8 as i32,
            Self::Uint8(v) => v[i] as i32,
            Self::Int32(v) => v[i],
        }
    }
}

fn floats(t: &TensorProto) -> Result<Vec<f32>, String> {
    if t.data_type != DataType::Float as i32 {
        return Err(format!("scale `{}` is not float32", t.name));
    }
    if t.raw_data.is_empty() {
        return Ok(t.float_data.clone());
    }
    if !t.raw_data.len().is_multiple_of(4) {
        return Err(format!("scale `{}` has a truncated buffer", t.name));
    }
    Ok(t.raw_data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::GraphProto;

    fn int8(name: &str, dims: &[i64], data: &[i8]) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::Int8 as i32,
            raw_data: data.iter().map(|&v| v as u8).collect(),
            ..Default::default()
        }
    }

    fn f32s(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::Float as i32,
            float_data: data.to_vec(),
            ..Default::default()
        }
    }

    fn dq_node(block: Option<i64>, axis: i64) -> NodeProto {
        let mut attribute = vec![AttributeProto {
            name: "axis".into(),
            i: axis,
            ..Default::default()
        }];
        if let Some(b) = block {
            attribute.push(AttributeProto {
                name: "block_size".into(),
                i: b,
                ..Default::default()
            });
        }
        NodeProto {
            name: "dq".into(),
            op_type: "DequantizeLinear".into(),
            input: vec!["q".into(), "s".into(), "z".into()],
            output: vec!["w".into()],
            attribute,
            ..Default::default()
        }
    }

    fn constants(list: Vec<TensorProto>) -> HashMap<String, TensorProto> {
        list.into_iter().map(|t| (t.name.clone(), t)).collect()
    }

    #[test]
    fn block_dequantize_uses_the_scale_of_each_block() {
        // 2 rows of 5 values, blocks of 2 along axis 1 -> 3 blocks per row (last one short).
        let q = int8("q", &[2, 5], &[1, 2, 3, 4, 5, -1, -2, -3, -4, -5]);
        let s = f32s("s", &[2, 3], &[1.0, 10.0, 100.0, 0.5, 0.25, 2.0]);
        let z = int8("z", &[2, 3], &[0, 1, 0, 0, 0, 1]);
        let out = dequantize(&dq_node(Some(2), 1), &constants(vec![q, s, z]), None).unwrap();
        assert_eq!(out.dims, vec![2, 5]);
        assert_eq!(
            out.float_data,
            vec![1.0, 2.0, 20.0, 30.0, 500.0, -0.5, -1.0, -0.75, -1.0, -12.0]
        );
    }

    #[test]
    fn per_axis_and_per_tensor_dequantize() {
        let q = int8("q", &[2, 2], &[2, 4, 6, 8]);
        let s = f32s("s", &[2], &[0.5, 2.0]);
        let z = int8("z", &[2], &[0, 2]);
        let out = dequantize(&dq_node(None, 0), &constants(vec![q.clone(), s, z]), None).unwrap();
        assert_eq!(out.float_data, vec![1.0, 2.0, 8.0, 12.0]);

        let s = f32s("s", &[], &[0.5]);
        let z = int8("z", &[], &[1]);
        let out = dequantize(&dq_node(None, 1), &constants(vec![q, s, z]), None).unwrap();
        assert_eq!(out.float_data, vec![0.5, 1.5, 2.5, 3.5]);
    }

    #[test]
    fn a_scale_of_the_wrong_size_is_an_error_not_a_panic() {
        let q = int8("q", &[2, 4], &[0; 8]);
        let s = f32s("s", &[2, 1], &[1.0, 1.0]);
        let z = int8("z", &[2, 1], &[0, 0]);
        let err = dequantize(&dq_node(Some(2), 1), &constants(vec![q, s, z]), None).unwrap_err();
        assert!(err.to_string().contains("expected 4"), "{err}");
    }

    #[test]
    fn rewrite_folds_constants_and_drops_unused_inputs() {
        let value = |name: &str| ValueInfoProto {
            name: name.into(),
            ..Default::default()
        };
        let conv = NodeProto {
            op_type: "Conv".into(),
            input: vec!["data".into(), "w".into()],
            output: vec!["out".into()],
            ..Default::default()
        };
        let mut model = ModelProto {
            graph: Some(GraphProto {
                node: vec![dq_node(Some(2), 1), conv],
                initializer: vec![
                    int8("q", &[1, 2], &[3, 4]),
                    f32s("s", &[1, 1], &[2.0]),
                    int8("z", &[1, 1], &[0]),
                    f32s("stale", &[1], &[0.0]),
                ],
                input: vec![value("data"), value("stale"), value("never_read")],
                output: vec![value("out")],
                value_info: vec![value("w")],
                ..Default::default()
            }),
            ..Default::default()
        };
        let summary = rewrite(&mut model, None).unwrap();
        assert_eq!(
            summary,
            RewriteSummary {
                dequantized: 1,
                dropped_inputs: 2,
                prelus_expanded: 0,
            }
        );
        let graph = model.graph.unwrap();
        assert_eq!(graph.node.len(), 1);
        assert_eq!(graph.input.len(), 1);
        assert_eq!(graph.initializer.len(), 1);
        assert_eq!(graph.initializer[0].float_data, vec![6.0, 8.0]);
        assert!(graph.value_info.is_empty());
    }

    #[test]
    fn large_folded_weights_go_to_external_data_with_the_same_values() {
        let node = dq_node(Some(2), 1);
        let make = || {
            constants(vec![
                int8("q", &[1, 4], &[1, 2, 3, 4]),
                f32s("s", &[1, 2], &[0.5, 2.0]),
                int8("z", &[1, 2], &[0, 1]),
            ])
        };
        let inline = dequantize(&node, &make(), None).unwrap();
        let mut file = vec![0u8; 0];
        let mut external = ExternalWeights::new("w.bin", &mut file, 4);
        let moved = dequantize(&node, &make(), Some(&mut external)).unwrap();
        assert!(moved.float_data.is_empty());
        let place: Vec<(&str, &str)> = moved
            .external_data
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            place,
            vec![("location", "w.bin"), ("offset", "0"), ("length", "16")]
        );
        let floats: Vec<f32> = file
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(floats, inline.float_data);

        let mut file = vec![0u8; 0];
        let mut external = ExternalWeights::new("w.bin", &mut file, 5);
        let small = dequantize(&node, &make(), Some(&mut external)).unwrap();
        assert_eq!(
            small.float_data, inline.float_data,
            "below min_values: inline"
        );
        assert!(file.is_empty());
    }
}
