//! The 1:N gallery: enrolled embeddings with ids, searched by brute-force cosine similarity.
//!
//! Brute force over one contiguous matrix is exact and, at 128 floats per face, searches tens
//! of thousands of faces in a few milliseconds; an approximate index is not worth its errors.

use std::collections::HashMap;

use serde::Serialize;

use super::embed::{EMBEDDING_DIM, Embedding, dot};

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub id: String,
    pub similarity: f32,
}

/// Embeddings by id. Invariant: `vectors.len() == ids.len() * EMBEDDING_DIM` and `positions`
/// maps each id to its row.
#[derive(Debug, Default, Clone)]
pub struct Gallery {
    ids: Vec<String>,
    vectors: Vec<f32>,
    positions: HashMap<String, usize>,
}

impl Gallery {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.positions.contains_key(id)
    }

    /// Adds or replaces the embedding for `id`; true when it replaced one.
    pub fn insert(&mut self, id: impl Into<String>, embedding: &Embedding) -> bool {
        let id = id.into();
        if let Some(&row) = self.positions.get(&id) {
            self.row_mut(row).copy_from_slice(embedding.as_slice());
            return true;
        }
        self.positions.insert(id.clone(), self.ids.len());
        self.ids.push(id);
        self.vectors.extend_from_slice(embedding.as_slice());
        false
    }

    /// Removes `id`; true when it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(row) = self.positions.remove(id) else {
            return false;
        };
        let last = self.ids.len() - 1;
        if row != last {
            let (head, tail) = self.vectors.split_at_mut(last * EMBEDDING_DIM);
            head[row * EMBEDDING_DIM..(row + 1) * EMBEDDING_DIM].copy_from_slice(tail);
            self.ids.swap(row, last);
            self.positions.insert(self.ids[row].clone(), row);
        }
        self.ids.pop();
        self.vectors.truncate(last * EMBEDDING_DIM);
        true
    }

    /// The `k` most similar faces, best first.
    pub fn search(&self, query: &Embedding, k: usize) -> Vec<Hit> {
        if k == 0 {
            return Vec::new();
        }
        let q = query.as_slice();
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
        for (row, vector) in self.vectors.chunks_exact(EMBEDDING_DIM).enumerate() {
            let similarity = dot(q, vector);
            if best.len() == k && similarity <= best[k - 1].0 {
                continue;
            }
            let at = best.partition_point(|&(s, _)| s >= similarity);
            best.insert(at, (similarity, row));
            best.truncate(k);
        }
        best.into_iter()
            .map(|(similarity, row)| Hit {
                id: self.ids[row].clone(),
                similarity,
            })
            .collect()
    }

    fn row_mut(&mut self, row: usize) -> &mut [f32] {
        &mut self.vectors[row * EMBEDDING_DIM..(row + 1) * EMBEDDING_DIM]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedding(seed: u64) -> Embedding {
        // A small xorshift so tests need no RNG crate.
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let values: Vec<f32> = (0..EMBEDDING_DIM)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        Embedding::from_raw(&values).unwrap()
    }

    #[test]
    fn search_finds_the_same_embedding_first_and_orders_by_similarity() {
        let mut g = Gallery::new();
        for i in 0..100 {
            g.insert(format!("face-{i}"), &embedding(i));
        }
        let hits = g.search(&embedding(42), 5);
        assert_eq!(hits.len(), 5);
        assert_eq!(hits[0].id, "face-42");
        assert!((hits[0].similarity - 1.0).abs() < 1e-5);
        assert!(hits.windows(2).all(|w| w[0].similarity >= w[1].similarity));
    }

    #[test]
    fn top_k_agrees_with_a_full_sort() {
        let mut g = Gallery::new();
        for i in 0..300 {
            g.insert(i.to_string(), &embedding(i));
        }
        let q = embedding(1000);
        let mut all: Vec<(f32, String)> = (0..300)
            .map(|i| (q.cosine(&embedding(i)), i.to_string()))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        let ids: Vec<String> = g.search(&q, 10).into_iter().map(|h| h.id).collect();
        let expected: Vec<String> = all.into_iter().take(10).map(|(_, id)| id).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn remove_keeps_the_other_faces_findable() {
        let mut g = Gallery::new();
        for i in 0..5 {
            g.insert(i.to_string(), &embedding(i));
        }
        assert!(g.remove("1"));
        assert!(!g.remove("1"));
        assert_eq!(g.len(), 4);
        assert!(!g.contains("1"));
        for i in [0, 2, 3, 4] {
            assert_eq!(g.search(&embedding(i), 1)[0].id, i.to_string());
        }
        assert!(g.search(&embedding(1), 4).iter().all(|h| h.id != "1"));
    }

    #[test]
    fn insert_replaces_an_existing_id() {
        let mut g = Gallery::new();
        assert!(!g.insert("a", &embedding(1)));
        assert!(g.insert("a", &embedding(2)));
        assert_eq!(g.len(), 1);
        assert!((g.search(&embedding(2), 1)[0].similarity - 1.0).abs() < 1e-5);
    }

    #[test]
    fn empty_gallery_and_zero_k_return_nothing() {
        let g = Gallery::new();
        assert!(g.search(&embedding(1), 3).is_empty());
        let mut g = Gallery::new();
        g.insert("a", &embedding(1));
        assert!(g.search(&embedding(1), 0).is_empty());
    }
}
