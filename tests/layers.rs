//! The crate's shape as rules that fail on a bad import: each rule is a function from a source
//! tree to its violations, run on this crate's `src/` (or `tests/`) and on a small fixture that
//! breaks it, so a rule that stops catching anything fails its own test. The one table of
//! layers is [`LAYERS`]; `src/lib.rs` explains it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Modules by rank, lowest first: a module may import only modules of a lower rank (never one
/// of its own rank, never a higher one), so the order inside the core layer is as fixed as the
/// order between layers. An entry names a top-level module or a nested one (`a::b`); a file
/// belongs to the longest entry its path starts with.
const LAYERS: &[(&str, &[&[&str]])] = &[
    ("foundation", &[&["clock", "domain"], &["config"]]),
    ("store", &[&["store", "observability::telemetry"]]),
    (
        "core",
        &[
            &[
                "error",
                "limits::throttle",
                "observability::audit",
                "mail::templates",
                "credentials::totp",
                "credentials::passkeys",
            ],
            &[
                "mail::transport",
                "credentials::bridge",
                "credentials::tokens",
                "limits::rate_limit",
            ],
            &[
                "credentials::passwords",
                "credentials::service_keys",
                "liveness::gate",
            ],
            &[
                "liveness::bus",
                "liveness::events",
                "observability::metrics",
            ],
        ],
    ),
    ("services", &[&["services"]]),
    ("http", &[&["http"]]),
    // The CLI composes the services as the server does: through the composition root.
    ("entry points", &[&["startup"], &["cli"]]),
];

/// Folders that only group modules of the core by what they are about: their `mod.rs`
/// declares modules and imports nothing.
const GROUPS: &[&str] = &["credentials", "limits", "liveness", "mail", "observability"];

/// What `http/` may name: it reaches the store and the core only through `services`.
const HTTP_MAY_NAME: &[&str] = &["services", "domain", "clock", "config", "error", "http"];

/// Where actix-web and the contract's `ApiError` may be named.
const HTTP_AWARE: &[&str] = &["http", "startup"];

/// Where `sqlx` may be named: the store, and the entry points that open it.
const SQLX_AWARE: &[&str] = &["store"];

/// Calls that read the wall clock; only `src/clock.rs` makes them, everything else asks the
/// injected `Clock`, so tests move time instead of waiting for it.
const WALL_CLOCK_READS: &[&str] = &[
    "SystemTime::now",
    "OffsetDateTime::now_utc",
    "OffsetDateTime::now_local",
    "Utc::now",
    "clock::now(",
];

/// Files that may read `Instant`, and why: a latency, or a freshness proof shorter than the
/// injected clock's one-second resolution.
const INSTANT_ALLOWED: &[(&str, &str)] = &[
    ("http/request_span.rs", "request latency for the access log"),
    ("http/metrics.rs", "request latency for the histogram"),
    (
        "liveness/gate/mod.rs",
        "how old a cached session snapshot is, sub-second while the bus is down",
    ),
    (
        "liveness/bus.rs",
        "listener heartbeats: whether the LISTEN connection is alive, sub-second",
    ),
    (
        "liveness/gate/recently_ended.rs",
        "how old the proof that the ended set is current is, sub-second",
    ),
    (
        "liveness/events.rs",
        "when a read of the event log began, the proof the feed hands the gate",
    ),
    (
        "observability/metrics.rs",
        "how old the live-session count behind /metrics is (scrapes may come often)",
    ),
    (
        "services/readiness.rs",
        "the age of the last database check behind /readyz, sub-second",
    ),
];

/// Tests may sleep only between polls (inside a loop); these are the deliberate exceptions, by
/// file and the sleep's own text, each with its reason.
const DELIBERATE_SLEEPS: &[(&str, &str, &str)] = &[
    (
        "api/crash.rs",
        "sleep(Duration::from_millis(delay))",
        "a random moment to kill the process",
    ),
    (
        "api/bridge_keys.rs",
        "sleep(Duration::from_secs(60))",
        "an issuer that never answers (the fetch timeout is under test)",
    ),
    (
        "api/announcements.rs",
        "sleep(Duration::from_secs(1))",
        "the property under test starts one second after the revocation",
    ),
];

// ---------------------------------------------------------------------------------------------
// Reading a tree

/// `(path relative to the tree's root, text)` for every `.rs` file under `dir`.
fn read_tree(dir: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("read the tree") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into();
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn src() -> Vec<(String, String)> {
    read_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

fn tests_tree() -> Vec<(String, String)> {
    read_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"))
}

fn fixture(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

/// The file's text without its unit tests (they may reach anywhere).
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at])
}

/// The text without comments, so prose that mentions a module imports nothing.
fn code_only(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn entries() -> impl Iterator<Item = (&'static str, usize)> {
    LAYERS
        .iter()
        .flat_map(|(_, ranks)| ranks.iter())
        .enumerate()
        .flat_map(|(rank, modules)| modules.iter().map(move |m| (*m, rank)))
}

/// The table entry a module path (`a::b::c`) belongs to: the longest entry it starts with.
fn entry_of(path: &str) -> Option<(&'static str, usize)> {
    entries()
        .filter(|(entry, _)| path == *entry || path.starts_with(&format!("{entry}::")))
        .max_by_key(|(entry, _)| entry.len())
}

/// The module path of a file: `gate/recently_ended.rs` is `gate::recently_ended`.
fn module_of_file(rel: &str) -> String {
    rel.trim_end_matches(".rs")
        .trim_end_matches("/mod")
        .replace('/', "::")
}

/// Every module path a text names through `crate::`, including `use crate::{a, b::{c, d}}`;
/// each as far as it names modules (lowercase segments).
fn named_paths(text: &str) -> BTreeSet<String> {
    fn path_at(s: &str) -> String {
        let taken: String = s
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        taken
            .split("::")
            .take_while(|seg| seg.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .collect::<Vec<_>>()
            .join("::")
    }
    fn expand(prefix: &str, group: &str, out: &mut BTreeSet<String>) {
        let mut depth = 0;
        let mut start = 0;
        let mut items = Vec::new();
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&group[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(&group[start..]);
        for item in items {
            let item = item.trim();
            if let Some(at) = item.find("::{") {
                let inner = &item[at + 3..item.rfind('}').unwrap_or(item.len())];
                let head = join(prefix, &item[..at]);
                expand(&head, inner, out);
            } else {
                out.insert(join(prefix, &path_at(item)));
            }
        }
    }
    fn join(prefix: &str, rest: &str) -> String {
        match (prefix.is_empty(), rest.is_empty()) {
            (true, _) => rest.to_string(),
            (_, true) => prefix.to_string(),
            _ => format!("{prefix}::{rest}"),
        }
    }
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            expand("", &group[..end], &mut out);
        } else {
            out.insert(path_at(rest));
        }
    }
    out.retain(|p| !p.is_empty() && p != "self" && !p.starts_with("self::"));
    out
}

/// Every import between two table entries: `(file, from entry, to entry)`. A module path in no
/// entry is itself a violation, so a new module cannot slip past the table.
fn imports(tree: &[(String, String)]) -> (Vec<(String, String, String)>, Vec<String>) {
    let mut edges = Vec::new();
    let mut unplaced = Vec::new();
    for (rel, text) in tree {
        let module = module_of_file(rel);
        if module == "lib" || module == "main" {
            continue;
        }
        if GROUPS.contains(&module.as_str()) {
            let named = named_paths(&code_only(text));
            if !named.is_empty() {
                unplaced.push(format!("{rel} groups modules but names {named:?}"));
            }
            continue;
        }
        let Some((from, _)) = entry_of(&module) else {
            unplaced.push(format!("{rel} is in no layer"));
            continue;
        };
        for path in named_paths(&code_only(without_tests(text))) {
            match entry_of(&path) {
                Some((to, _)) if to != from => edges.push((rel.clone(), from.into(), to.into())),
                Some(_) => {}
                None => unplaced.push(format!("{rel} names crate::{path}, in no layer")),
            }
        }
    }
    (edges, unplaced)
}

// ---------------------------------------------------------------------------------------------
// The rules

/// Imports that point up or sideways (same rank), and modules the table does not place.
fn imports_not_pointing_down(tree: &[(String, String)]) -> Vec<String> {
    let rank = |entry: &str| entry_of(entry).map(|(_, r)| r).unwrap();
    let (edges, mut violations) = imports(tree);
    violations.extend(
        edges
            .iter()
            .filter(|(_, from, to)| rank(to) >= rank(from))
            .map(|(file, from, to)| format!("{file}: {from} -> {to}")),
    );
    violations
}

/// Import circles between entries (a rank order cannot have one; this names it if the table
/// is ever loosened).
fn import_circles(tree: &[(String, String)]) -> Vec<String> {
    let (edges, _) = imports(tree);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, from, to) in edges {
        graph.entry(from).or_default().insert(to);
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
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
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .filter_map(|m| visit(m, &graph, &mut Vec::new(), &mut done))
        .map(|circle| circle.join(" -> "))
        .collect()
}

/// Imports from `http/` that skip the services layer.
fn http_skipping_services(tree: &[(String, String)]) -> Vec<String> {
    let (edges, _) = imports(tree);
    edges
        .into_iter()
        .filter(|(_, from, to)| from == "http" && !HTTP_MAY_NAME.contains(&to.as_str()))
        .map(|(file, _, to)| format!("{file} names {to}"))
        .collect()
}

fn top_of(rel: &str) -> &str {
    rel.split('/').next().unwrap().trim_end_matches(".rs")
}

/// Files outside `allowed` top-level modules that name any of `words` in code.
fn naming_outside(tree: &[(String, String)], words: &[&str], allowed: &[&str]) -> Vec<String> {
    tree.iter()
        .filter(|(rel, _)| !allowed.contains(&top_of(rel)) && rel != "main.rs")
        .filter_map(|(rel, text)| {
            let code = code_only(without_tests(text));
            let named: Vec<&str> = words.iter().copied().filter(|w| code.contains(w)).collect();
            (!named.is_empty()).then(|| format!("{rel} names {named:?}"))
        })
        .collect()
}

fn http_outside_http(tree: &[(String, String)]) -> Vec<String> {
    naming_outside(tree, &["actix_web", "ApiError"], HTTP_AWARE)
}

fn sqlx_outside_store(tree: &[(String, String)]) -> Vec<String> {
    naming_outside(tree, &["sqlx::"], SQLX_AWARE)
}

/// Wall-clock reads outside `clock.rs`, and `Instant` outside the files allowed to measure.
fn time_not_from_the_clock(tree: &[(String, String)]) -> Vec<String> {
    let mut violations = naming_outside(tree, WALL_CLOCK_READS, &["clock"]);
    for (rel, text) in tree {
        let allowed = INSTANT_ALLOWED.iter().any(|(file, _)| file == rel);
        if !allowed && code_only(without_tests(text)).contains("Instant") {
            violations.push(format!("{rel} reads Instant"));
        }
    }
    violations
}

/// Sleeps in tests that are not a poll's interval (inside a loop) nor a deliberate one.
fn fixed_sleeps(tree: &[(String, String)]) -> Vec<String> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut violations = Vec::new();
    for (rel, text) in tree {
        if rel == "layers.rs" {
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            let code = code_only(line);
            if !code.contains("sleep(") || code.trim_start().starts_with("fn ") {
                continue;
            }
            // The lines that open the blocks the sleep stands in, innermost first, up to its fn.
            let mut openers = Vec::new();
            let mut depth = indent(line);
            for l in lines[..at].iter().rev() {
                if indent(l) < depth && l.trim_end().ends_with('{') {
                    depth = indent(l);
                    openers.push(l.trim());
                    if l.contains("fn ") {
                        break;
                    }
                }
            }
            let is_loop = |opener: &str| {
                ["loop {", "while ", "for "]
                    .iter()
                    .any(|w| opener.starts_with(w) || opener.contains(&format!(" {w}")))
            };
            let polling = openers.iter().any(|o| is_loop(o));
            let deliberate = DELIBERATE_SLEEPS
                .iter()
                .any(|(file, sleep, _)| file == rel && line.contains(sleep));
            if !polling && !deliberate {
                violations.push(format!("tests/{rel}:{} sleeps a fixed time", at + 1));
            }
        }
    }
    violations
}

// ---------------------------------------------------------------------------------------------
// Each rule on this crate, and on a fixture that breaks it

fn assert_none(rule: &str, violations: Vec<String>) {
    assert!(violations.is_empty(), "{rule}: {violations:#?}");
}

#[test]
fn imports_point_down() {
    assert_none(
        "imports that do not point down",
        imports_not_pointing_down(&src()),
    );
    let up = fixture(&[("store/users.rs", "use crate::services::Services;")]);
    assert_eq!(
        imports_not_pointing_down(&up),
        ["store/users.rs: store -> services"]
    );
    // Inside the core layer too: the gate sits below the feed, not beside it.
    let sideways = fixture(&[(
        "liveness/gate/mod.rs",
        "use crate::liveness::events::EventFeed;",
    )]);
    assert_eq!(
        imports_not_pointing_down(&sideways),
        ["liveness/gate/mod.rs: liveness::gate -> liveness::events"]
    );
    let unplaced = fixture(&[("newthing.rs", "use crate::store::Store;")]);
    assert_eq!(
        imports_not_pointing_down(&unplaced),
        ["newthing.rs is in no layer"]
    );
    let fine = fixture(&[(
        "liveness/events.rs",
        "use crate::{liveness::gate::SessionGate, store::Store};",
    )]);
    assert_none("a downward import", imports_not_pointing_down(&fine));
}

#[test]
fn no_import_circles() {
    assert_none("import circles", import_circles(&src()));
    let circle = fixture(&[
        (
            "liveness/gate/mod.rs",
            "use crate::liveness::events::EventFeed;",
        ),
        (
            "liveness/events.rs",
            "use crate::liveness::gate::SessionGate;",
        ),
    ]);
    assert_eq!(import_circles(&circle).len(), 1);
}

#[test]
fn http_reaches_the_store_only_through_services() {
    assert_none("http skipping services", http_skipping_services(&src()));
    let skip = fixture(&[("http/routes/me.rs", "use crate::store::UserRow;")]);
    assert_eq!(
        http_skipping_services(&skip),
        ["http/routes/me.rs names store"]
    );
}

#[test]
fn only_http_knows_http() {
    assert_none("HTTP below http/", http_outside_http(&src()));
    let leak = fixture(&[(
        "services/mod.rs",
        "fn f() -> crate::http::ApiError { todo!() }",
    )]);
    assert_eq!(http_outside_http(&leak).len(), 1);
}

#[test]
fn only_the_store_knows_sqlx() {
    assert_none("sqlx outside store/", sqlx_outside_store(&src()));
    let leak = fixture(&[("services/sessions.rs", "let pool: sqlx::AnyPool;")]);
    assert_eq!(sqlx_outside_store(&leak).len(), 1);
    let comment = fixture(&[("services/sessions.rs", "// sqlx is the store's business")]);
    assert_none("a comment", sqlx_outside_store(&comment));
}

#[test]
fn time_comes_from_the_injected_clock() {
    assert_none(
        "time read around the clock",
        time_not_from_the_clock(&src()),
    );
    let wall = fixture(&[(
        "services/accounts.rs",
        "let now = time::OffsetDateTime::now_utc();",
    )]);
    assert_eq!(time_not_from_the_clock(&wall).len(), 1);
    let instant = fixture(&[(
        "credentials/tokens/keys.rs",
        "let at = std::time::Instant::now();",
    )]);
    assert_eq!(
        time_not_from_the_clock(&instant),
        ["credentials/tokens/keys.rs reads Instant"]
    );
}

#[test]
fn tests_wait_for_conditions_not_for_time() {
    assert_none("fixed sleeps in tests/", fixed_sleeps(&tests_tree()));
    let fixed = fixture(&[(
        "api/x.rs",
        "async fn t() {\n    logout().await;\n    tokio::time::sleep(ONE_SECOND).await;\n}",
    )]);
    assert_eq!(
        fixed_sleeps(&fixed),
        ["tests/api/x.rs:3 sleeps a fixed time"]
    );
    let poll = fixture(&[(
        "api/x.rs",
        "async fn t() {\n    loop {\n        tokio::time::sleep(POLL).await;\n    }\n}",
    )]);
    assert_none("a poll interval", fixed_sleeps(&poll));
}

#[test]
fn the_reader_sees_grouped_imports() {
    let names = named_paths("use crate::{a::X, b, c::{d, e::F}};\nlet x = crate::f::g::h();");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(names, ["a", "b", "c::d", "c::e", "f::g::h"]);
}

/// `cargo test --test layers -- --nocapture import_graph` prints the graph, one line per entry.
#[test]
fn import_graph() {
    let (edges, _) = imports(&src());
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, from, to) in edges {
        graph.entry(from).or_default().insert(to);
    }
    for (from, tos) in &graph {
        let tos: Vec<&str> = tos.iter().map(String::as_str).collect();
        println!("{from:12} -> {}", tos.join(" "));
    }
    assert!(
        graph.contains_key("services") && graph.contains_key("http"),
        "the graph holds the layers: {graph:?}"
    );
}
