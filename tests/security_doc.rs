//! docs/security.md names the tests that try each of its claims, as `tests/FILE.rs::NAME` or
//! `src/PATH.rs::NAME`. A renamed or deleted test, a claim that cites none, or a citation in
//! another form fails here (the format is documented at the top of the document).

use std::path::Path;

const DOC: &str = "docs/security.md";

fn read(relative: &str) -> Option<String> {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).ok()
}

/// The code spans of one line: what stands between pairs of backticks.
fn spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// `Some((file, name))` when `span` is a citation.
fn citation(span: &str) -> Option<(&str, &str)> {
    let (file, name) = span.split_once("::")?;
    let is_path = (file.starts_with("tests/") || file.starts_with("src/"))
        && file.ends_with(".rs")
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_/.-".contains(c));
    let is_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (is_path && is_name).then_some((file, name))
}

/// What is wrong with citing `name` in `source` (a file's text), if anything: no such
/// function, not a test, or an ignored test cited as if it ran (`line` must then say
/// "defect").
fn check_test(source: &str, name: &str, line: &str) -> Result<(), String> {
    let lines: Vec<&str> = source.lines().collect();
    let at = lines
        .iter()
        .position(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("async ").unwrap_or(l);
            l.strip_prefix("fn ")
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(|rest| rest.starts_with('(') || rest.starts_with('<'))
        })
        .ok_or("no such function")?;
    // The attributes and doc comments right above it.
    let attributes: Vec<&str> = lines[..at]
        .iter()
        .rev()
        .map(|l| l.trim())
        .take_while(|l| l.starts_with("#[") || l.starts_with("///") || l.starts_with("//"))
        .collect();
    if !attributes
        .iter()
        .any(|a| *a == "#[test]" || a.starts_with("#[tokio::test"))
    {
        return Err("not a #[test] function".into());
    }
    if attributes.iter().any(|a| a.starts_with("#[ignore")) && !line.contains("defect") {
        return Err("an #[ignore]d test, cited on a line that does not say it is a defect".into());
    }
    Ok(())
}

#[test]
fn every_test_the_security_doc_cites_exists_and_is_a_test() {
    let doc = read(DOC).expect("docs/security.md");
    let mut problems = Vec::new();
    let mut cited = 0;
    for (n, line) in doc.lines().enumerate() {
        for span in spans(line) {
            if let Some((file, name)) = citation(span) {
                cited += 1;
                let verdict = match read(file) {
                    None => Err(format!("{file} does not exist")),
                    Some(source) => check_test(&source, name, line),
                };
                if let Err(why) = verdict {
                    problems.push(format!("{DOC}:{}: `{span}`: {why}", n + 1));
                }
            } else if span.starts_with("tests/") && line.contains(&format!("`{span}` `")) {
                // The old form: a file, then the test's name in a span of its own.
                problems.push(format!(
                    "{DOC}:{}: `{span}` `…`: cite a test as `tests/FILE.rs::NAME`",
                    n + 1
                ));
            } else if [
                "scripts/", "deploy/", "systemd/", "config/", "src/", "tests/",
            ]
            .iter()
            .any(|dir| span.starts_with(dir))
                && !span.contains([' ', '<', ':'])
                && read(span).is_none()
            {
                problems.push(format!("{DOC}:{}: `{span}` does not exist", n + 1));
            }
        }
    }
    assert!(
        cited >= 40,
        "only {cited} citations: is the format still the documented one?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_row_of_a_claims_table_cites_a_test() {
    let doc = read(DOC).expect("docs/security.md");
    let mut problems = Vec::new();
    let mut rows = 0;
    let mut in_claims = false;
    for (n, line) in doc.lines().enumerate() {
        if !line.starts_with('|') {
            in_claims = false;
            continue;
        }
        if line.to_lowercase().contains("tried by") {
            in_claims = true; // a header row
            continue;
        }
        if !in_claims || line.starts_with("|--") || line.starts_with("| --") {
            continue;
        }
        rows += 1;
        if !spans(line).into_iter().any(|s| citation(s).is_some()) {
            problems.push(format!(
                "{DOC}:{}: a claim that cites no test: {line}",
                n + 1
            ));
        }
    }
    assert!(
        rows >= 20,
        "only {rows} claim rows: the tables were not found"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_citation_check_refuses_what_it_must() {
    let source = "#[test]\nfn real() {}\n\n#[test]\n#[ignore = \"defect: x\"]\nfn broken() {}\n\nfn helper() {}\n";
    assert_eq!(check_test(source, "real", ""), Ok(()));
    assert!(check_test(source, "rea", "").is_err(), "a prefix of a name");
    assert!(check_test(source, "missing", "").is_err());
    assert!(check_test(source, "helper", "").is_err(), "not a test");
    assert!(
        check_test(source, "broken", "tried by").is_err(),
        "ignored, not said"
    );
    assert_eq!(check_test(source, "broken", "a known defect"), Ok(()));
    assert_eq!(
        citation("tests/embedded.rs::a_b"),
        Some(("tests/embedded.rs", "a_b"))
    );
    assert_eq!(
        citation("src/door/mod.rs::x"),
        Some(("src/door/mod.rs", "x"))
    );
    assert_eq!(citation("facegate::door"), None);
    assert_eq!(citation("tests/embedded.rs"), None);
}
