//! `facegate eval-identification` on real photos: the door's open-set figure holds strangers to
//! the target the operator set, where the old 1:1 threshold used for 1:N let them in.

mod common;

use std::path::Path;

use serde_json::Value;

/// A folder of symlinks to the first `count` entries of `from` (people or photos), sorted.
fn subset(from: &Path, count: usize, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for entry in entries.into_iter().take(count) {
        std::os::unix::fs::symlink(&entry, to.join(entry.file_name().unwrap())).unwrap();
    }
}

/// Runs the evaluation with `config` and returns its one row and the report.
fn evaluate(config: &Path, enroll: &Path, strangers: &Path) -> (Value, Value) {
    let out = common::facegate(&[
        "--config",
        config.to_str().unwrap(),
        "eval-identification",
        "--enroll",
        enroll.to_str().unwrap(),
        "--strangers",
        strangers.to_str().unwrap(),
        "--photos",
        "1",
        "--enrolled",
        "40",
        "--repeats",
        "2",
        "--json",
        // The second run reuses the first one's embeddings.
        "--cache",
        enroll.with_file_name("embeddings.jsonl").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "eval-identification: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{report}");
    (rows[0].clone(), report)
}

fn rate(row: &Value, name: &str) -> (f64, f64, u64) {
    let r = &row[name];
    (
        r["rate"].as_f64().unwrap(),
        r["low"].as_f64().unwrap(),
        r["of"].as_u64().unwrap(),
    )
}

#[test]
fn strangers_are_held_to_the_target_where_the_one_to_one_threshold_lets_them_in() {
    let (Some(faces), Some(_)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (enroll, strangers) = (work.path().join("enroll"), work.path().join("strangers"));
    subset(&faces.join("dev"), 60, &enroll);
    subset(&faces.join("dev-strangers"), 400, &strangers);
    let config = |name: &str, matching: &str| {
        let path = work.path().join(name);
        let text = format!(
            "data_dir = \"{}\"\n[vision]\nmodel_dir = \"{}\"\n[matching]\n{matching}\n",
            work.path().join("data").display(),
            common::model_dir().unwrap().display()
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let door = config("door.toml", "target_fpir = 0.001");
    let old = config("old.toml", "fixed_threshold = 0.363\nmargin = 0.0");

    let (row, report) = evaluate(&door, &enroll, &strangers);
    assert_eq!(row["enrolled_people"], 40);
    assert_eq!(row["galleries"], 2);
    let (fpir, fpir_low, strangers_seen) = rate(&row, "fpir");
    // Every stranger photo, and the photos of the 20 people not drawn, in both galleries.
    assert!(strangers_seen >= 2 * 400, "{row}");
    let target = report["target_fpir"].as_f64().unwrap();
    assert!(
        fpir_low <= target && fpir < 0.01,
        "strangers granted {fpir} (interval from {fpir_low}), target {target}: {row}"
    );
    let (misidentified, _, _) = rate(&row, "misidentification");
    assert!(
        misidentified <= 0.01,
        "genuine granted as someone else: {row}"
    );
    let (fnir, _, genuine) = rate(&row, "fnir");
    assert!(genuine > 0 && fnir < 0.15, "genuine refused {fnir}: {row}");
    let threshold = row["threshold"].as_f64().unwrap();

    let (old_row, _) = evaluate(&old, &enroll, &strangers);
    let (old_fpir, _, _) = rate(&old_row, "fpir");
    assert!(
        threshold > old_row["threshold"].as_f64().unwrap(),
        "a 1:40 search needs a stricter threshold than a 1:1 comparison: {row} {old_row}"
    );
    assert!(
        old_fpir > fpir,
        "the 1:1 threshold used for 1:N grants more strangers ({old_fpir}) than the rule ({fpir})"
    );
}
