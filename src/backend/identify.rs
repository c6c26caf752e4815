//! Who a frame shows, by the decision rule, over the ports: the device flow asks it before it
//! names a user to the pool, and Verify asks it again of the uploaded frame. Written once so the
//! door and the trigger can never disagree about what a match is.

use std::collections::HashSet;

use super::{BackendError, Directory, FaceIndex};
use crate::matching::{DecisionRule, Identification};

/// How many of the nearest faces a search returns: enough that someone else's best face is
/// among them even when the candidate enrolled many photos.
pub const SEARCH_DEPTH: usize = 32;

/// The rule's verdict on a frame and the person it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Identified {
    /// The claimed user, or without a claim the owner of the nearest face (`None`: nobody
    /// enrolled is near).
    pub user: Option<String>,
    pub verdict: Identification,
}

/// Judges the largest face of `frame`: is it `claimed` (or, with no claim, the owner of the
/// nearest face), beyond the threshold for the gallery's size and by the margin over anyone
/// else? `Ok(Err(reason))` when the frame has no usable face; `Err` when a service failed (a
/// request the directory rejects included: that is not the frame's fault).
pub async fn identify(
    frame: &[u8],
    claimed: Option<&str>,
    faces: &dyn FaceIndex,
    directory: &dyn Directory,
    rule: &DecisionRule,
) -> Result<Result<Identified, String>, BackendError> {
    let count = async {
        if rule.needs_face_count() {
            faces.face_count().await
        } else {
            Ok(0)
        }
    };
    // The search's own refusal means the frame has no usable face; keep it apart from the
    // other calls' errors.
    let search = async {
        match faces.search_by_image(frame, SEARCH_DEPTH).await {
            Err(BackendError::Rejected(reason)) => Ok(Err(reason)),
            other => other.map(Ok),
        }
    };
    let (matches, count, user, own) = match claimed {
        // The claimed user's faces are looked up alongside the search: one round trip.
        Some(user) => {
            let (matches, count, own) =
                tokio::try_join!(search, count, directory.faces_of_user(user))?;
            let matches = match matches {
                Ok(matches) => matches,
                Err(reason) => return Ok(Err(reason)),
            };
            (matches, count, Some(user.to_string()), own)
        }
        None => {
            let (matches, count) = tokio::try_join!(search, count)?;
            let matches = match matches {
                Ok(matches) => matches,
                Err(reason) => return Ok(Err(reason)),
            };
            let user = match matches.first() {
                Some(nearest) => directory.user_of_face(&nearest.face_id).await?,
                None => None,
            };
            let own = match &user {
                Some(user) => directory.faces_of_user(user).await?,
                None => Vec::new(),
            };
            (matches, count, user, own)
        }
    };
    let own: HashSet<String> = own.into_iter().collect();
    let best = |mine: bool| {
        matches
            .iter()
            .filter(|m| own.contains(&m.face_id) == mine)
            .map(|m| m.similarity)
            .reduce(f32::max)
    };
    Ok(Ok(Identified {
        verdict: rule.decide(best(true), best(false), count),
        user,
    }))
}
