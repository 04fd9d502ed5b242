//! The layer table of ARCHITECTURE.md, enforced: every `crate::` path in `src/` must point at a
//! module in a lower layer than the file that names it. Reads the source as text, runs nothing.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Module name → layer number (1 is the top), read from ARCHITECTURE.md's "## Layers" table.
fn layer_table(root: &Path) -> HashMap<String, usize> {
    let text = fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Layers"))
        .expect("ARCHITECTURE.md has a '## Layers' section");
    let mut layers = HashMap::new();
    for row in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Some(Ok(number)) = cells.get(1).map(|c| c.parse::<usize>()) else {
            continue;
        };
        for module in cells[2].split(',') {
            let module = module.trim().trim_matches('`');
            assert!(
                layers.insert(module.to_owned(), number).is_none(),
                "`{module}` appears twice in the layer table"
            );
        }
    }
    assert!(!layers.is_empty(), "the layer table has no rows");
    layers
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable src/") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for the crate roots).
fn owner(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" => None,
        name => Some(name.trim_end_matches(".rs").to_owned()),
    }
}

/// The first segment of every path after `crate::`, with the line it is on. A use group
/// (`crate::{a::b, c}`) yields each of its members; nested groups below those are not first
/// segments and are skipped.
fn crate_paths(source: &str) -> Vec<(usize, String)> {
    let code: String = source
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at;
        from = start + "crate::".len();
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let line = code[..start].matches('\n').count() + 1;
        if bytes.get(from) == Some(&b'{') {
            let mut depth = 0;
            let mut expect_name = false;
            let mut i = from;
            while i < bytes.len() {
                match bytes[i] {
                    b'{' => {
                        depth += 1;
                        expect_name = depth == 1;
                    }
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    b',' if depth == 1 => expect_name = true,
                    c if c.is_ascii_alphanumeric() || c == b'_' => {
                        let end = ident_end(bytes, i);
                        if expect_name {
                            found.push((line, code[i..end].to_owned()));
                            expect_name = false;
                        }
                        i = end;
                        continue;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            let end = ident_end(bytes, from);
            found.push((line, code[from..end].to_owned()));
        }
    }
    found
}

fn ident_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    i
}

#[test]
fn every_import_runs_down_the_layer_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layers = layer_table(root);
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(root.join("src")).expect("under src/");
        let Some(module) = owner(relative) else {
            continue;
        };
        let Some(&own) = layers.get(&module) else {
            wrong.push(format!(
                "src/{}: module `{module}` is not in ARCHITECTURE.md's layer table",
                relative.display()
            ));
            continue;
        };
        let source = fs::read_to_string(file).expect("readable source");
        for (line, target) in crate_paths(&source) {
            if target == module || target == "self" || target == "super" {
                continue;
            }
            match layers.get(&target) {
                Some(&theirs) if theirs > own => {}
                Some(&theirs) => wrong.push(format!(
                    "src/{}:{line}: `{module}` (layer {own}) imports `{target}` (layer {theirs})",
                    relative.display()
                )),
                None => wrong.push(format!(
                    "src/{}:{line}: `{target}` is not in ARCHITECTURE.md's layer table",
                    relative.display()
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that do not run down the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn use_groups_yield_each_first_segment() {
    let found = crate_paths(
        "use crate::{api::{self, x}, config::Config};\nlet a = crate::clock::now(); // crate::no\n",
    );
    let names: Vec<_> = found.iter().map(|(l, n)| (*l, n.as_str())).collect();
    assert_eq!(names, [(1, "api"), (1, "config"), (2, "clock")]);
}
