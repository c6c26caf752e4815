//! A Rekognition stand-in for tests against an emulated AWS (which has no Rekognition): the
//! JSON protocol's `CreateCollection`, `DescribeCollection`, `IndexFaces`,
//! `SearchFacesByImage`, `CompareFaces` and `DeleteFaces` (`X-Amz-Target:
//! RekognitionService.*`), over facegate's own face engine, on 127.0.0.1. The SDK reaches it
//! through an endpoint override (`AWS_ENDPOINT_URL_REKOGNITION`, or
//! `backend.aws.rekognition_endpoint_url`).
//!
//! An example rather than a `facegate` subcommand: it is test equipment, never shipped in the
//! package, and `cargo test --all-targets` already builds it.
//!
//! Similarity: SFace's cosine mapped onto Rekognition's percent so that the engine's match
//! threshold lands on 95 % (Rekognition's usual threshold), 20 points per 1.0 of cosine.
//! Faces count as people the way facegate's enrollment counts them (confident, at least half
//! the largest face's size); a face failing the quality gate is `LOW_QUALITY`.
//!
//! `cargo run --example fake_rekognition -- [--port N] [--models DIR]` prints
//! `listening on http://127.0.0.1:PORT` and serves until killed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use facegate::vision::{DescribedFace, Embedding, Face, FaceEngine, VisionConfig};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};

/// Rekognition percent for an SFace cosine, with the engine's threshold at 95.
fn percent(cosine: f32, threshold: f32) -> f32 {
    (95.0 + (cosine - threshold) * 20.0).clamp(0.0, 100.0)
}

struct Stored {
    face_id: String,
    external_id: Option<String>,
    embedding: Embedding,
}

struct Service {
    engine: Mutex<FaceEngine>,
    collections: Mutex<HashMap<String, Vec<Stored>>>,
}

/// An error as the JSON protocol sends it.
struct Fault(&'static str, String);

type Reply = Result<Value, Fault>;

fn invalid(message: &str) -> Fault {
    Fault("InvalidParameterException", message.into())
}

/// The people in a photo, largest first, and the largest one described.
struct Seen {
    faces: Vec<Face>,
    largest: Option<DescribedFace>,
    width: f32,
    height: f32,
}

impl Service {
    fn see(&self, image: &Value) -> Result<Seen, Fault> {
        let bytes = image
            .get("Bytes")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("only Image.Bytes is supported"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(bytes)
            .map_err(|_| invalid("Image.Bytes is not base64"))?;
        let mut engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        let fault =
            |e: facegate::vision::VisionError| Fault("InvalidImageFormatException", e.to_string());
        let frame = engine.decode(&bytes).map_err(fault)?;
        let min_score = engine.config().quality.min_score;
        let detected = engine.detect(&frame).map_err(fault)?;
        let largest = match detected.first() {
            Some(face) => Some(engine.describe(&frame, face).map_err(fault)?),
            None => None,
        };
        let side = |f: &Face| f.bbox.width.min(f.bbox.height);
        let biggest = detected.first().map_or(0.0, side);
        let faces = detected
            .into_iter()
            .filter(|f| f.score >= min_score && side(f) >= biggest / 2.0)
            .collect();
        Ok(Seen {
            faces,
            largest,
            width: frame.width() as f32,
            height: frame.height() as f32,
        })
    }

    fn threshold(&self) -> f32 {
        self.engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .match_threshold()
    }

    fn handle(&self, op: &str, input: &Value) -> Reply {
        let collection = || {
            input
                .get("CollectionId")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| invalid("CollectionId is required"))
        };
        match op {
            "CreateCollection" => {
                let id = collection()?;
                let mut all = self.collections.lock().unwrap();
                if all.contains_key(&id) {
                    return Err(Fault(
                        "ResourceAlreadyExistsException",
                        format!("The collection id: {id} already exists"),
                    ));
                }
                all.insert(id.clone(), Vec::new());
                Ok(json!({"StatusCode": 200, "CollectionArn": arn(&id), "FaceModelVersion": "7.0"}))
            }
            "DescribeCollection" => {
                let id = collection()?;
                let count = self.with_collection(&id, |faces| faces.len())?;
                Ok(json!({"FaceCount": count, "FaceModelVersion": "7.0",
                          "CollectionARN": arn(&id), "CreationTimestamp": 1.8e9}))
            }
            "IndexFaces" => self.index_faces(&collection()?, input),
            "SearchFacesByImage" => self.search(&collection()?, input),
            "CompareFaces" => self.compare(input),
            "DeleteFaces" => {
                let id = collection()?;
                let ids: Vec<String> = input
                    .get("FaceIds")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let deleted = self.with_collection(&id, |faces| {
                    let before: Vec<String> = faces.iter().map(|f| f.face_id.clone()).collect();
                    faces.retain(|f| !ids.contains(&f.face_id));
                    ids.iter()
                        .filter(|i| before.contains(i))
                        .cloned()
                        .collect::<Vec<_>>()
                })?;
                Ok(json!({"DeletedFaces": deleted, "UnsuccessfulFaceDeletions": []}))
            }
            other => Err(Fault(
                "UnknownOperationException",
                format!("{other} is not implemented by this stand-in"),
            )),
        }
    }

    fn with_collection<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Vec<Stored>) -> T,
    ) -> Result<T, Fault> {
        let mut all = self.collections.lock().unwrap();
        let faces = all.get_mut(id).ok_or_else(|| {
            Fault(
                "ResourceNotFoundException",
                format!("The collection id: {id} does not exist"),
            )
        })?;
        Ok(f(faces))
    }

    fn index_faces(&self, id: &str, input: &Value) -> Reply {
        self.with_collection(id, |_| ())?;
        let seen = self.see(input.get("Image").unwrap_or(&Value::Null))?;
        let max = input.get("MaxFaces").and_then(Value::as_u64).unwrap_or(100) as usize;
        let external = input
            .get("ExternalImageId")
            .and_then(Value::as_str)
            .map(String::from);
        let detail =
            |f: &Face| json!({"BoundingBox": bbox(f, &seen), "Confidence": f.score * 100.0});
        let mut records = Vec::new();
        let mut unindexed: Vec<Value> = seen
            .faces
            .iter()
            .skip(max.min(1))
            .map(|f| json!({"Reasons": ["EXCEEDS_MAX_FACES"], "FaceDetail": detail(f)}))
            .collect();
        if let Some(largest) = &seen.largest {
            if !largest.quality.passed {
                unindexed
                    .push(json!({"Reasons": ["LOW_QUALITY"], "FaceDetail": detail(&largest.face)}));
            } else if max >= 1 {
                let face_id = uuid::Uuid::new_v4().to_string();
                self.with_collection(id, |faces| {
                    faces.push(Stored {
                        face_id: face_id.clone(),
                        external_id: external.clone(),
                        embedding: largest.embedding,
                    })
                })?;
                records.push(json!({
                    "Face": {"FaceId": face_id, "BoundingBox": bbox(&largest.face, &seen),
                             "ImageId": uuid::Uuid::new_v4().to_string(),
                             "ExternalImageId": external, "Confidence": largest.face.score * 100.0},
                    "FaceDetail": detail(&largest.face),
                }));
            }
        }
        Ok(json!({"FaceRecords": records, "UnindexedFaces": unindexed, "FaceModelVersion": "7.0"}))
    }

    fn search(&self, id: &str, input: &Value) -> Reply {
        self.with_collection(id, |_| ())?;
        let seen = self.see(input.get("Image").unwrap_or(&Value::Null))?;
        let Some(largest) = seen.largest.as_ref() else {
            return Err(invalid(
                "There are no faces in the image. Should be at least 1.",
            ));
        };
        let floor = input
            .get("FaceMatchThreshold")
            .and_then(Value::as_f64)
            .unwrap_or(80.0) as f32;
        let max = input
            .get("MaxFaces")
            .and_then(Value::as_u64)
            .unwrap_or(4096) as usize;
        let threshold = self.threshold();
        let mut matches = self.with_collection(id, |faces| {
            faces
                .iter()
                .map(|f| {
                    (
                        percent(largest.embedding.cosine(&f.embedding), threshold),
                        f,
                    )
                })
                .filter(|(similarity, _)| *similarity >= floor)
                .map(|(similarity, f)| {
                    json!({"Similarity": similarity,
                           "Face": {"FaceId": f.face_id, "ExternalImageId": f.external_id,
                                    "Confidence": 99.9}})
                })
                .collect::<Vec<_>>()
        })?;
        matches.sort_by(|a, b| {
            b["Similarity"]
                .as_f64()
                .partial_cmp(&a["Similarity"].as_f64())
                .unwrap()
        });
        matches.truncate(max);
        Ok(
            json!({"SearchedFaceBoundingBox": bbox(&largest.face, &seen),
                  "SearchedFaceConfidence": largest.face.score * 100.0,
                  "FaceMatches": matches, "FaceModelVersion": "7.0"}),
        )
    }

    fn compare(&self, input: &Value) -> Reply {
        let source = self.see(input.get("SourceImage").unwrap_or(&Value::Null))?;
        let target = self.see(input.get("TargetImage").unwrap_or(&Value::Null))?;
        let (Some(s), Some(t)) = (&source.largest, &target.largest) else {
            return Err(invalid(
                "There are no faces in the image. Should be at least 1.",
            ));
        };
        let floor = input
            .get("SimilarityThreshold")
            .and_then(Value::as_f64)
            .unwrap_or(80.0) as f32;
        let similarity = percent(s.embedding.cosine(&t.embedding), self.threshold());
        let face =
            json!({"BoundingBox": bbox(&t.face, &target), "Confidence": t.face.score * 100.0});
        let (matched, unmatched) = if similarity >= floor {
            (
                vec![json!({"Similarity": similarity, "Face": face})],
                vec![],
            )
        } else {
            (vec![], vec![face])
        };
        Ok(
            json!({"SourceImageFace": {"BoundingBox": bbox(&s.face, &source), "Confidence": s.face.score * 100.0},
                  "FaceMatches": matched, "UnmatchedFaces": unmatched}),
        )
    }
}

fn arn(id: &str) -> String {
    format!("aws:rekognition:us-east-1:000000000000:collection/{id}")
}

/// Rekognition's bounding boxes are ratios of the image's size.
fn bbox(face: &Face, seen: &Seen) -> Value {
    json!({"Left": face.bbox.x / seen.width, "Top": face.bbox.y / seen.height,
           "Width": face.bbox.width / seen.width, "Height": face.bbox.height / seen.height})
}

async fn serve(
    service: Arc<Service>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let op = target
        .strip_prefix("RekognitionService.")
        .unwrap_or(&target)
        .to_string();
    let reply = match serde_json::from_slice::<Value>(&body) {
        Ok(input) => {
            let service = service.clone();
            let op = op.clone();
            tokio::task::spawn_blocking(move || service.handle(&op, &input))
                .await
                .unwrap_or_else(|e| Err(Fault("InternalServerError", e.to_string())))
        }
        Err(e) => Err(Fault("SerializationException", e.to_string())),
    };
    let (status, kind, value) = match reply {
        Ok(value) => (200, None, value),
        Err(Fault(kind, message)) => {
            let status = if kind == "InternalServerError" {
                500
            } else {
                400
            };
            (
                status,
                Some(kind),
                json!({"__type": kind, "Message": message, "message": message}),
            )
        }
    };
    eprintln!(
        "fake-rekognition: {op} -> {status}{}",
        kind.map(|k| format!(" {k}")).unwrap_or_default()
    );
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string());
    if let Some(kind) = kind {
        response = response.header("x-amzn-errortype", kind);
    }
    Ok(response
        .body(Full::new(Bytes::from(value.to_string())))
        .expect("a valid response"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut port, mut models) = (0u16, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().ok_or("--port N")?.parse()?,
            "--models" => {
                models = Some(std::path::PathBuf::from(args.next().ok_or("--models DIR")?))
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let config = VisionConfig {
        model_dir: models,
        ..VisionConfig::default()
    };
    let service = Arc::new(Service {
        engine: Mutex::new(FaceEngine::load(&config)?),
        collections: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = service.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let handler = hyper::service::service_fn(move |r| serve(service.clone(), r));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, handler)
                .await;
        });
    }
}
