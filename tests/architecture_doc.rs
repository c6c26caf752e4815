//! docs/architecture.md's module table names every module of the library: a module added to
//! src/lib.rs and not to the map fails here.

use std::path::Path;

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).unwrap()
}

#[test]
fn the_module_table_names_every_module_of_lib_rs() {
    let lib = read("src/lib.rs");
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .collect();
    assert!(modules.len() >= 10, "the walk is broken: {modules:?}");
    let doc = read("docs/architecture.md");
    let table: Vec<&str> = doc
        .lines()
        .skip_while(|l| !l.starts_with("## Modules"))
        .take_while(|l| !l.starts_with("## Ports"))
        .collect();
    let missing: Vec<&&str> = modules
        .iter()
        .filter(|m| {
            let (dir, file) = (format!("`src/{m}/`"), format!("`src/{m}.rs`"));
            !table.iter().any(|l| l.contains(&dir) || l.contains(&file))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/architecture.md's module table: {missing:?}"
    );
}
