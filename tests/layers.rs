//! The crate's import shape, read from its own `crate::` paths: every top-level module imports
//! only from layers below its own (or beside it, without a circle), and only `http/` (with the
//! binary's `startup`) knows actix-web or the contract's `ApiError`. See `src/lib.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first; a module may import its own layer or lower ones.
const LAYERS: &[&[&str]] = &[
    &["clock", "config", "domain"],
    &["store"],
    &["error"],
    &[
        "audit",
        "bridge",
        "events",
        "gate",
        "metrics",
        "passwords",
        "rate_limit",
        "service_keys",
        "telemetry",
        "throttle",
        "tokens",
    ],
    &["services"],
    &["http"],
    &["startup", "cli"],
];

/// Where actix-web and `ApiError` may be named.
const HTTP_AWARE: &[&str] = &["http", "startup"];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("src/{module} is in no layer of tests/layers.rs"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's text without its unit tests (they may reach anywhere).
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at])
}

/// Every top-level module a text names through `crate::`, including `use crate::{a, b::c}`.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find(';').unwrap_or(group.len())];
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' => start = depth == 0,
                    _ if start && !c.is_whitespace() => {
                        start = false;
                        names.insert(ident(&group[i..]));
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(ident(rest));
        }
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

struct Shape {
    edges: BTreeMap<String, BTreeSet<String>>,
    http_leaks: Vec<String>,
}

/// The crate's `src/`, or another tree's with `SESSIOND_LAYERS_SRC` (to print the graph of an
/// older checkout with `import_graph`).
fn read_shape() -> Shape {
    let src = std::env::var_os("SESSIOND_LAYERS_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut http_leaks = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let top = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let text = without_tests(&text);
        for name in named_modules(text) {
            if name != top {
                edges.entry(top.clone()).or_default().insert(name);
            }
        }
        let names_http = text.contains("actix_web") || text.contains("ApiError");
        if names_http && !HTTP_AWARE.contains(&top.as_str()) {
            http_leaks.push(rel);
        }
    }
    Shape { edges, http_leaks }
}

#[test]
fn every_import_points_down_or_sideways() {
    let shape = read_shape();
    let upward: Vec<String> = shape
        .edges
        .iter()
        .flat_map(|(from, tos)| tos.iter().map(move |to| (from, to)))
        .filter(|(from, to)| layer_of(to) > layer_of(from))
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    assert!(upward.is_empty(), "imports that point up: {upward:?}");
}

#[test]
fn no_import_circles() {
    let shape = read_shape();
    // Depth-first search for a back edge; reports the first circle it finds.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            return Some(path[at..].to_vec());
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in shape.edges.keys() {
        let circle = visit(module, &shape.edges, &mut Vec::new(), &mut done);
        assert!(circle.is_none(), "import circle: {circle:?}");
    }
}

#[test]
fn only_http_knows_http() {
    let shape = read_shape();
    assert!(
        shape.http_leaks.is_empty(),
        "files below http/ that name actix_web or ApiError: {:?}",
        shape.http_leaks
    );
}

#[test]
fn the_reader_sees_grouped_imports() {
    let names = named_modules("use crate::{a::X, b, c::{d, e}};\nlet x = crate::f::g();");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(names, ["a", "b", "c", "f"]);
}

/// `cargo test --test layers -- --nocapture import_graph` prints the graph, one line per module,
/// and the files below `http/` that name actix-web or `ApiError`.
#[test]
fn import_graph() {
    let shape = read_shape();
    for (from, tos) in &shape.edges {
        let tos: Vec<&str> = tos.iter().map(String::as_str).collect();
        println!("{from:12} -> {}", tos.join(" "));
    }
    println!("HTTP named below http/: {:?}", shape.http_leaks);
    assert!(!shape.edges.is_empty(), "the graph was read");
}
