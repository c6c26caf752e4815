//! The face index as an Amazon Rekognition collection. Similarities are Rekognition's percent;
//! searches ask for matches down to `search_floor` percent, below the decision threshold by at
//! least the margin, so the decision rule sees a runner-up that comes close.

use async_trait::async_trait;
use aws_sdk_rekognition::Client;
use aws_sdk_rekognition::error::ProvideErrorMetadata;
use aws_sdk_rekognition::primitives::Blob;
use aws_sdk_rekognition::types::{Image, QualityFilter, Reason};

use super::errors;
use crate::backend::{BackendError, FaceIndex, FaceMatch};

#[derive(Clone)]
pub struct RekognitionIndex {
    client: Client,
    collection_id: String,
    /// Percent, 0-100: the lowest similarity a search returns.
    search_floor: f32,
}

impl RekognitionIndex {
    pub fn new(client: Client, collection_id: impl Into<String>, search_floor: f32) -> Self {
        Self {
            client,
            collection_id: collection_id.into(),
            search_floor,
        }
    }
}

fn image(bytes: &[u8]) -> Image {
    Image::builder().bytes(Blob::new(bytes.to_vec())).build()
}

/// Rekognition's ExternalImageId allows `[a-zA-Z0-9_.\-:]+`; e-mail usernames carry `@`. The
/// id is informational (the directory holds the real link), so other characters become `_`.
pub fn external_image_id(username: &str) -> String {
    username
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[async_trait]
impl FaceIndex for RekognitionIndex {
    async fn index_face(&self, photo: &[u8], external_id: &str) -> Result<String, BackendError> {
        let out = self
            .client
            .index_faces()
            .collection_id(&self.collection_id)
            .image(image(photo))
            .external_image_id(external_image_id(external_id))
            .max_faces(1)
            .quality_filter(QualityFilter::Auto)
            .send()
            .await
            .map_err(|e| errors::map("Rekognition IndexFaces", e))?;
        let indexed: Vec<String> = out
            .face_records()
            .iter()
            .filter_map(|r| r.face().and_then(|f| f.face_id()).map(str::to_string))
            .collect();
        let more_faces = out
            .unindexed_faces()
            .iter()
            .any(|u| u.reasons().contains(&Reason::ExceedsMaxFaces));
        if more_faces {
            // Several people in an enrollment photo: whose face is it? Undo and refuse.
            self.delete_faces(&indexed).await?;
            return Err(BackendError::Rejected(
                "the photo shows more than one face".into(),
            ));
        }
        match indexed.as_slice() {
            [face_id] => Ok(face_id.clone()),
            [] => {
                let reasons: Vec<String> = out
                    .unindexed_faces()
                    .iter()
                    .flat_map(|u| u.reasons().iter().map(|r| r.as_str().to_string()))
                    .collect();
                Err(BackendError::Rejected(if reasons.is_empty() {
                    "no face in the photo".into()
                } else {
                    format!("the face was not indexed: {}", reasons.join(", "))
                }))
            }
            _ => Err(BackendError::Internal(
                "IndexFaces indexed several faces with MaxFaces=1".into(),
            )),
        }
    }

    async fn search_by_image(
        &self,
        photo: &[u8],
        max_faces: usize,
    ) -> Result<Vec<FaceMatch>, BackendError> {
        let out = self
            .client
            .search_faces_by_image()
            .collection_id(&self.collection_id)
            .image(image(photo))
            .max_faces(i32::try_from(max_faces).unwrap_or(i32::MAX))
            .face_match_threshold(self.search_floor)
            .quality_filter(QualityFilter::Auto)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            // Rekognition's way of saying "no face in this image".
            Err(e) if e.code() == Some("InvalidParameterException") => {
                return Err(BackendError::Rejected("no usable face in the frame".into()));
            }
            Err(e) => return Err(errors::map("Rekognition SearchFacesByImage", e)),
        };
        let mut matches: Vec<FaceMatch> = out
            .face_matches()
            .iter()
            .filter_map(|m| {
                Some(FaceMatch {
                    face_id: m.face()?.face_id()?.to_string(),
                    similarity: m.similarity()?,
                })
            })
            .collect();
        matches.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        Ok(matches)
    }

    async fn face_count(&self) -> Result<usize, BackendError> {
        let out = self
            .client
            .describe_collection()
            .collection_id(&self.collection_id)
            .send()
            .await
            .map_err(|e| errors::map("Rekognition DescribeCollection", e))?;
        Ok(out.face_count().map_or(0, |n| n as usize))
    }

    async fn compare(&self, source: &[u8], target: &[u8]) -> Result<f32, BackendError> {
        let out = self
            .client
            .compare_faces()
            .source_image(image(source))
            .target_image(image(target))
            .similarity_threshold(0.0)
            .send()
            .await
            .map_err(|e| errors::map("Rekognition CompareFaces", e))?;
        Ok(out
            .face_matches()
            .iter()
            .filter_map(|m| m.similarity())
            .fold(0.0, f32::max))
    }

    async fn delete_faces(&self, face_ids: &[String]) -> Result<(), BackendError> {
        if face_ids.is_empty() {
            return Ok(());
        }
        self.client
            .delete_faces()
            .collection_id(&self.collection_id)
            .set_face_ids(Some(face_ids.to_vec()))
            .send()
            .await
            .map_err(|e| errors::map("Rekognition DeleteFaces", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids_keep_what_rekognition_allows() {
        assert_eq!(external_image_id("ana@example.com"), "ana_example.com");
        assert_eq!(external_image_id("a-b_c:d.e"), "a-b_c:d.e");
    }
}
