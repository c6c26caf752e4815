//! The tests that need the face photos, the models or a tool skip without them on a
//! developer's machine, and fail instead where CI sets the switches (scripts/run-tests.sh): a
//! checkout without the photos must not pass green.

mod common;

use std::path::PathBuf;

#[test]
fn a_missing_photo_folder_fails_when_required_and_skips_otherwise() {
    let missing = PathBuf::from("/nonexistent/facegate-faces");
    assert!(common::faces_at(missing.clone(), false).is_none());
    let required = std::panic::catch_unwind(|| common::faces_at(missing, true));
    assert!(
        required.is_err(),
        "a required photo folder that is missing passed"
    );
    // Where CI requires them, they are really there.
    if common::required("FACEGATE_REQUIRE_FACES") || common::required("FACEGATE_REQUIRE_MODELS") {
        assert!(common::faces_dir().is_some());
        assert!(common::model_dir().is_some());
    }
}
