//! The configuration is documented key by key twice: in the shipped config/facegate.toml
//! (commented) and in docs/configuration.md. A key added to the code and to neither fails here.

use std::collections::BTreeSet;
use std::path::Path;

use facegate::config::Config;

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).unwrap()
}

/// Every leaf key of `value` as a dotted path, with door names as `NAME`.
fn leaves(value: &toml::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, child) in table {
                let key = if prefix == "doors" {
                    "NAME"
                } else {
                    key.as_str()
                };
                let path = if prefix.is_empty() {
                    key.to_string()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(child, &path, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

fn keys(config: &Config) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    leaves(&toml::Value::try_from(config).unwrap(), "", &mut out);
    out
}

/// The shipped file with its commented-out keys (`# key = value`) switched on.
fn shipped_with_every_key() -> Config {
    let text: String = read("config/facegate.toml")
        .lines()
        .map(|line| {
            let is_key = line.strip_prefix("# ").is_some_and(|rest| {
                rest.split_once(" = ").is_some_and(|(key, _)| {
                    key.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                })
            });
            if is_key { &line[2..] } else { line }
        })
        .collect::<Vec<_>>()
        .join("\n");
    // Not validated: the optional keys together (pins on a simulated relay) are not a valid
    // door, but every one of them must be a real key (unknown keys are refused).
    toml::from_str(&text).expect("every key in config/facegate.toml is a real key")
}

#[test]
fn the_shipped_config_names_every_key() {
    let shipped = keys(&shipped_with_every_key());
    let missing: Vec<_> = keys(&Config::default())
        .difference(&shipped)
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "not in config/facegate.toml: {missing:?}"
    );
}

#[test]
fn docs_configuration_md_documents_every_key() {
    let doc = read("docs/configuration.md");
    let all = keys(&shipped_with_every_key());
    assert!(all.len() > 70, "{} keys: the walk is broken", all.len());
    let missing: Vec<_> = all
        .iter()
        .filter(|key| !doc.contains(&format!("`{key}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md: {missing:?}"
    );
}
