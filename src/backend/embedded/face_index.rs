//! The on-device face index: SFace embeddings, sealed, in a sled tree, searched through the
//! in-memory gallery. Inference runs on the blocking pool so the async runtime never stalls.
//!
//! One inference per attempt: the embeddings of the last few images are remembered by the
//! SHA-256 of their bytes — computed here, or offered by the daemon, which embedded the frame
//! as it tracked it — so the device's identification and Verify, which judge the same uploaded
//! bytes, do not run the model again. Verify still decides from the uploaded object: a different
//! object is a different digest.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::backend::{BackendError, FaceIndex, FaceMatch};
use crate::store::Sealer;
use crate::vision::{Embedding, FaceEngine, Gallery, VisionError};

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("face index: {e}"))
}

/// Embeddings by FaceId, persisted and searchable.
#[derive(Clone)]
pub struct LocalFaceIndex {
    engine: Arc<Mutex<FaceEngine>>,
    tree: sled::Tree,
    sealer: Arc<Sealer>,
    gallery: Arc<Mutex<Gallery>>,
    recent: Arc<Mutex<Recent>>,
}

/// The embeddings of the last images searched, by the image's digest.
type Recent = VecDeque<([u8; 32], Embedding)>;

/// Images whose embeddings are remembered.
const RECENT: usize = 8;

fn digest(image: &[u8]) -> [u8; 32] {
    Sha256::digest(image).into()
}

impl LocalFaceIndex {
    /// Opens the index and loads every stored embedding into the gallery.
    pub fn open(
        db: &sled::Db,
        engine: Arc<Mutex<FaceEngine>>,
        sealer: Arc<Sealer>,
    ) -> Result<Self, BackendError> {
        let tree = db.open_tree("faces/embeddings").map_err(internal)?;
        let mut gallery = Gallery::new();
        for entry in tree.iter() {
            let (id, sealed) = entry.map_err(internal)?;
            let id = String::from_utf8_lossy(&id).into_owned();
            let bytes = sealer.open(&sealed, &slot(&id)).map_err(internal)?;
            let embedding = Embedding::from_bytes(&bytes)
                .ok_or_else(|| internal("a stored embedding is damaged"))?;
            gallery.insert(id, &embedding);
        }
        Ok(Self {
            engine,
            tree,
            sealer,
            gallery: Arc::new(Mutex::new(gallery)),
            recent: Arc::default(),
        })
    }

    /// The face engine this index runs (shared with the daemon's frame analysis).
    pub fn engine(&self) -> Arc<Mutex<FaceEngine>> {
        self.engine.clone()
    }

    pub fn len(&self) -> usize {
        self.gallery.lock().map(|g| g.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `work` with the engine on the blocking pool.
    async fn with_engine<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut FaceEngine) -> Result<T, BackendError> + Send + 'static,
    ) -> Result<T, BackendError> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || {
            let mut engine = engine.lock().map_err(internal)?;
            work(&mut engine)
        })
        .await
        .map_err(internal)?
    }

    /// The embedding of the one face of `image`, refusing what enrollment must not accept.
    pub async fn enrollable_embedding(&self, image: &[u8]) -> Result<Embedding, BackendError> {
        let image = image.to_vec();
        self.with_engine(move |engine| enrollable_face(engine, &image))
            .await
    }

    /// The embedding of the largest face of `image` (remembered for the same bytes).
    pub async fn probe_embedding(&self, image: &[u8]) -> Result<Embedding, BackendError> {
        let key = digest(image);
        if let Some(known) = self.recalled(&key) {
            return Ok(known);
        }
        let image = image.to_vec();
        let embedding = self
            .with_engine(move |engine| {
                let frame = engine.decode(&image).map_err(vision)?;
                Ok(engine.largest_face(&frame).map_err(vision)?.embedding)
            })
            .await?;
        self.remember(key, embedding);
        Ok(embedding)
    }

    fn recalled(&self, key: &[u8; 32]) -> Option<Embedding> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().find(|(k, _)| k == key).map(|(_, e)| *e)
    }

    fn remember(&self, key: [u8; 32], embedding: Embedding) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.retain(|(k, _)| *k != key);
        recent.push_back((key, embedding));
        while recent.len() > RECENT {
            recent.pop_front();
        }
    }

    /// The `max_faces` faces nearest to `embedding`, best first.
    pub fn search_embedding(&self, embedding: &Embedding, max_faces: usize) -> Vec<FaceMatch> {
        let gallery = self.gallery.lock().unwrap_or_else(|p| p.into_inner());
        gallery
            .search(embedding, max_faces)
            .into_iter()
            .map(|hit| FaceMatch {
                face_id: hit.id,
                similarity: hit.similarity,
            })
            .collect()
    }
}

/// The associated data that binds a sealed embedding to its FaceId.
fn slot(face_id: &str) -> String {
    format!("faces/embeddings/{face_id}")
}

fn vision(e: VisionError) -> BackendError {
    match e {
        VisionError::Image(e) => BackendError::Rejected(e.to_string()),
        VisionError::NoFace => BackendError::Rejected("no face in the image".into()),
        other => BackendError::Internal(other.to_string()),
    }
}

#[async_trait]
impl FaceIndex for LocalFaceIndex {
    async fn index_face(&self, image: &[u8], _external_id: &str) -> Result<String, BackendError> {
        let embedding = self.enrollable_embedding(image).await?;
        let face_id = uuid::Uuid::new_v4().to_string();
        let sealed = self.sealer.seal(&embedding.to_bytes(), &slot(&face_id));
        self.tree
            .insert(face_id.as_bytes(), sealed)
            .map_err(internal)?;
        self.tree.flush_async().await.map_err(internal)?;
        self.gallery
            .lock()
            .map_err(internal)?
            .insert(face_id.clone(), &embedding);
        Ok(face_id)
    }

    async fn search_by_image(
        &self,
        image: &[u8],
        max_faces: usize,
    ) -> Result<Vec<FaceMatch>, BackendError> {
        let embedding = self.probe_embedding(image).await?;
        Ok(self.search_embedding(&embedding, max_faces))
    }

    async fn face_count(&self) -> Result<usize, BackendError> {
        Ok(self.len())
    }

    fn offer_embedding(&self, image: &[u8], embedding: &[f32]) {
        if let Some(embedding) = Embedding::from_raw(embedding) {
            self.remember(digest(image), embedding);
        }
    }

    async fn compare(&self, source: &[u8], target: &[u8]) -> Result<f32, BackendError> {
        let a = self.probe_embedding(source).await?;
        let b = self.probe_embedding(target).await?;
        Ok(a.cosine(&b))
    }

    async fn delete_faces(&self, face_ids: &[String]) -> Result<(), BackendError> {
        let mut gallery = self.gallery.lock().map_err(internal)?;
        for id in face_ids {
            self.tree.remove(id.as_bytes()).map_err(internal)?;
            gallery.remove(id);
        }
        self.tree.flush().map_err(internal)?;
        Ok(())
    }
}

/// The embedding of the one face of `image`, refusing what enrollment must not accept: no
/// face, several prominent faces, a face that fails the quality gate. Shared by the embedded
/// backend and AWS enrollment (which checks photos on the device before uploading them).
pub fn enrollable_face(engine: &mut FaceEngine, image: &[u8]) -> Result<Embedding, BackendError> {
    let frame = engine.decode(image).map_err(vision)?;
    let faces = engine.detect(&frame).map_err(vision)?;
    let Some(largest) = faces.first() else {
        return Err(BackendError::Rejected("no face in the photo".into()));
    };
    let described = engine.describe(&frame, largest).map_err(vision)?;
    match enrollment_refusal(&faces, &described, engine.config().quality.min_score) {
        Some(reason) => Err(BackendError::Rejected(reason)),
        None => Ok(described.embedding),
    }
}

/// Why enrollment refuses a photo whose faces are `faces` (largest first) and whose largest face
/// is `described`, or `None` when it accepts it.
pub fn enrollment_refusal(
    faces: &[crate::vision::Face],
    described: &crate::vision::DescribedFace,
    min_score: f32,
) -> Option<String> {
    // A face counts as another person when it is confidently detected and at least half the
    // size of the main one; a distant passer-by at the edge does not.
    let side = |f: &crate::vision::Face| f.bbox.width.min(f.bbox.height);
    let largest = side(&described.face);
    let people = faces
        .iter()
        .filter(|f| f.score >= min_score && side(f) >= largest / 2.0)
        .count();
    if people > 1 {
        return Some(format!(
            "{people} faces in the photo; an enrollment photo must show one person"
        ));
    }
    if !described.quality.passed {
        return Some(format!(
            "the face fails the quality gate: {}",
            described.quality.reasons.join("; ")
        ));
    }
    None
}
