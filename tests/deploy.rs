//! The deploy files against the code. `cargo test` needs no container engine, so the Dockerfile
//! is read as text here (scripts/container-test, run by CI, builds it with podman and runs the
//! image): everything it copies must exist (and be tracked by git, since hosts build from a
//! clone), the build stage must see every file the crate embeds at compile time, and the image
//! must run the binary Cargo builds. `render.yaml` and `railway.json` must parse, name the
//! Dockerfile, a health check the service serves, and only settings sessiond reads; and the
//! binary, started with the image's environment plus the blueprint's, must answer that check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

// ---------------------------------------------------------------------------------------------
// Reading the repository

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Whether git knows the path (a host builds from a clone, so an untracked file is missing
/// there). Answers `None` when git cannot be asked, e.g. in an exported source tree.
fn tracked_by_git(relative: &str) -> Option<bool> {
    let output = Command::new("git")
        .args(["ls-files", "--", relative])
        .current_dir(repo())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output.status.success().then_some(!output.stdout.is_empty())
}

/// The path exists here and, when git can tell, in a clone.
fn assert_in_repository(relative: &str, what: &str) {
    assert!(
        repo().join(relative).exists(),
        "{what}: {relative} does not exist in the repository"
    );
    if let Some(tracked) = tracked_by_git(relative) {
        assert!(
            tracked,
            "{what}: {relative} is not tracked by git, so a host building from a clone lacks it"
        );
    }
}

/// `name` and `path` of the `[lib]` and `[[bin]]` tables of Cargo.toml.
struct Targets {
    lib_path: String,
    bins: Vec<(String, String)>,
}

fn cargo_targets() -> Targets {
    let mut lib_path = None;
    let mut bins = Vec::new();
    let mut section = String::new();
    let mut name = None;
    let mut path = None;
    let mut flush = |section: &str, name: &mut Option<String>, path: &mut Option<String>| {
        match section {
            "[lib]" => lib_path = path.take().or(lib_path.take()),
            "[[bin]]" => bins.push((
                name.take().expect("a [[bin]] without name"),
                path.take().expect("a [[bin]] without path"),
            )),
            _ => {}
        }
        *name = None;
        *path = None;
    };
    for line in read("Cargo.toml").lines().map(str::trim) {
        if line.starts_with('[') {
            flush(&section, &mut name, &mut path);
            section = line.to_string();
        } else if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().trim_matches('"').to_string();
            match key.trim() {
                "name" => name = Some(value),
                "path" => path = Some(value),
                _ => {}
            }
        }
    }
    flush(&section, &mut name, &mut path);
    Targets {
        lib_path: lib_path.unwrap_or_else(|| "src/lib.rs".into()),
        bins,
    }
}

/// The binary the image must run: the `[[bin]]` built from src/main.rs. (Any other binary is
/// built too, so its source must reach the build stage as well.)
fn cargo_bin() -> String {
    let bins = cargo_targets().bins;
    let service: Vec<&String> = bins
        .iter()
        .filter(|(_, path)| path == "src/main.rs")
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        service.len(),
        1,
        "Cargo.toml declares {bins:?}: expected one [[bin]] with path src/main.rs"
    );
    service[0].clone()
}

/// Files the crate reads at compile time: `include_str!`/`include_bytes!` (relative to the
/// source file) and `sqlx::migrate!` (relative to the manifest), as repository paths.
fn embedded_files() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                scan(&path, found);
            }
        }
    }
    fn scan(file: &Path, found: &mut BTreeSet<String>) {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (macro_name, relative_to_file) in [
                ("include_str!(", true),
                ("include_bytes!(", true),
                ("migrate!(", false),
            ] {
                let Some(at) = line.find(macro_name) else {
                    continue;
                };
                let rest = line[at + macro_name.len()..].trim_start();
                let literal = rest
                    .strip_prefix('"')
                    .and_then(|r| r.split_once('"'))
                    .map(|(literal, _)| literal)
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: {macro_name}…) without a plain string literal; teach \
                             tests/deploy.rs to resolve it",
                            file.display()
                        )
                    });
                let base = if relative_to_file {
                    file.parent().unwrap().to_path_buf()
                } else {
                    repo().to_path_buf()
                };
                let absolute = normalize(&base.join(literal));
                let relative = absolute
                    .strip_prefix(repo())
                    .unwrap_or_else(|_| {
                        panic!(
                            "{} embeds {literal}, outside the repository",
                            file.display()
                        )
                    })
                    .to_string_lossy()
                    .into_owned();
                found.insert(relative);
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(&repo().join("src"), &mut found);
    found
}

// ---------------------------------------------------------------------------------------------
// Reading the Dockerfile

#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

#[derive(Debug)]
struct Stage {
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all(&self, keyword: &str) -> impl Iterator<Item = &Instruction> {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
    }

    /// The WORKDIR in effect before instruction `index` (absolute paths only).
    fn workdir_at(&self, index: usize) -> PathBuf {
        self.instructions[..index]
            .iter()
            .filter(|i| i.keyword == "WORKDIR")
            .fold(PathBuf::from("/"), |dir, i| {
                normalize(&dir.join(i.args.trim()))
            })
    }

    fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for instruction in self.all("ENV") {
            let args = instruction.args.trim();
            let first = args.split_whitespace().next().unwrap_or_default();
            if first.contains('=') {
                for pair in args.split_whitespace() {
                    let (key, value) = pair
                        .split_once('=')
                        .unwrap_or_else(|| panic!("ENV {args}: expected KEY=VALUE pairs"));
                    env.insert(key.to_string(), value.trim_matches('"').to_string());
                }
            } else {
                let value = args[first.len()..].trim().trim_matches('"');
                env.insert(first.to_string(), value.to_string());
            }
        }
        env
    }

    fn copies(&self) -> Vec<(usize, CopyInstruction)> {
        self.instructions
            .iter()
            .enumerate()
            .filter(|(_, i)| i.keyword == "COPY" || i.keyword == "ADD")
            .map(|(index, i)| {
                assert_eq!(i.keyword, "COPY", "ADD {}: use COPY", i.args);
                (index, CopyInstruction::parse(&i.args))
            })
            .collect()
    }
}

#[derive(Debug)]
struct CopyInstruction {
    from: Option<String>,
    sources: Vec<String>,
    dest: String,
}

impl CopyInstruction {
    fn parse(args: &str) -> CopyInstruction {
        let mut words: Vec<String> = args.split_whitespace().map(String::from).collect();
        let flags: Vec<String> = words
            .iter()
            .take_while(|w| w.starts_with("--"))
            .cloned()
            .collect();
        words.drain(..flags.len());
        let rest = words.join(" ");
        let mut paths: Vec<String> = if rest.starts_with('[') {
            serde_json::from_str(&rest).unwrap_or_else(|e| panic!("COPY {args}: {e}"))
        } else {
            words
        };
        assert!(
            paths.len() >= 2,
            "COPY {args}: needs a source and a destination"
        );
        let dest = paths.pop().unwrap();
        for source in &paths {
            assert!(
                !source.contains(['*', '?', '[']),
                "COPY {args}: wildcards are not resolved by tests/deploy.rs; name the paths"
            );
        }
        CopyInstruction {
            from: flags
                .iter()
                .find_map(|f| f.strip_prefix("--from="))
                .map(String::from),
            sources: paths,
            dest,
        }
    }

    /// Where repository path `file` (inside `source`) lands in the image, with `workdir` in
    /// effect. A directory source copies its contents into the destination.
    fn landing(&self, source: &str, file: &str, workdir: &Path) -> PathBuf {
        let dest = normalize(&workdir.join(&self.dest));
        let source_path = repo().join(source);
        if source_path.is_dir() {
            let inside = Path::new(file).strip_prefix(source).unwrap();
            normalize(&dest.join(inside))
        } else if self.dest.ends_with('/') || self.sources.len() > 1 {
            dest.join(Path::new(source).file_name().unwrap())
        } else {
            dest
        }
    }
}

fn dockerfile() -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut pending = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        // Comment and empty lines, also inside a continued instruction, are dropped by Docker.
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                logical.push(std::mem::take(&mut pending));
            }
        }
    }
    assert!(
        pending.trim().is_empty(),
        "the Dockerfile ends inside a continued line"
    );

    let mut stages: Vec<Stage> = Vec::new();
    for line in logical.iter().filter(|l| !l.trim().is_empty()) {
        let (keyword, args) = line
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((line, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            let words: Vec<&str> = args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words.as_slice() {
                [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => Some(name.to_string()),
                [_] => None,
                _ => panic!("FROM {args}: expected `FROM image [AS name]`"),
            };
            stages.push(Stage {
                name,
                instructions: Vec::new(),
            });
        } else {
            stages
                .last_mut()
                .expect("an instruction before the first FROM")
                .instructions
                .push(Instruction {
                    keyword,
                    args: args.trim().to_string(),
                });
        }
    }
    assert!(
        stages.len() >= 2,
        "expected a build stage and a runtime stage"
    );
    stages
}

/// The stage that runs `cargo build`, and the index of its last such RUN.
fn build_stage(stages: &[Stage]) -> (&Stage, usize) {
    let builds: Vec<(&Stage, usize)> = stages
        .iter()
        .filter_map(|stage| {
            stage
                .instructions
                .iter()
                .rposition(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
                .map(|index| (stage, index))
        })
        .collect();
    assert_eq!(builds.len(), 1, "exactly one stage runs `cargo build`");
    builds[0]
}

/// `.dockerignore` patterns, in order, with `!` exceptions marked.
fn dockerignore() -> Vec<(bool, String)> {
    read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.strip_prefix('!') {
            Some(p) => (true, p.trim_start_matches('/').to_string()),
            None => (false, l.trim_start_matches('/').to_string()),
        })
        .collect()
}

/// Docker's rule: the last pattern matching the path or one of its parent directories wins.
fn dockerignored(path: &str, patterns: &[(bool, String)]) -> bool {
    fn segment(pattern: &[u8], name: &[u8]) -> bool {
        match (pattern.first(), name.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                segment(&pattern[1..], name) || (!name.is_empty() && segment(pattern, &name[1..]))
            }
            (Some(b'?'), Some(_)) => segment(&pattern[1..], &name[1..]),
            (Some(p), Some(n)) if p == n => segment(&pattern[1..], &name[1..]),
            _ => false,
        }
    }
    fn segments(pattern: &[&str], path: &[&str]) -> bool {
        match (pattern.first(), path.first()) {
            (None, None) => true,
            (Some(&"**"), _) => {
                segments(&pattern[1..], path) || (!path.is_empty() && segments(pattern, &path[1..]))
            }
            (Some(p), Some(n)) => {
                segment(p.as_bytes(), n.as_bytes()) && segments(&pattern[1..], &path[1..])
            }
            _ => false,
        }
    }
    let parts: Vec<&str> = path.split('/').collect();
    let mut excluded = false;
    for (negated, pattern) in patterns {
        let pattern: Vec<&str> = pattern.split('/').collect();
        if (1..=parts.len()).any(|n| segments(&pattern, &parts[..n])) {
            excluded = !negated;
        }
    }
    excluded
}

// ---------------------------------------------------------------------------------------------
// Reading the blueprints and the settings

fn render() -> Yaml {
    serde_yaml::from_str(&read("render.yaml")).expect("render.yaml is YAML")
}

fn railway() -> Json {
    serde_json::from_str(&read("railway.json")).expect("railway.json is JSON")
}

fn render_web_service(render: &Yaml) -> &Yaml {
    let services = render["services"]
        .as_sequence()
        .expect("render.yaml: services is a list");
    let web: Vec<&Yaml> = services
        .iter()
        .filter(|s| s["type"].as_str() == Some("web"))
        .collect();
    assert_eq!(web.len(), 1, "render.yaml: exactly one web service");
    web[0]
}

fn yaml_keys(value: &Yaml) -> BTreeSet<String> {
    value
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn json_keys(value: &Json) -> BTreeSet<String> {
    value
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The built-in settings (config/default.toml) as a tree.
fn default_settings() -> Json {
    config::Config::builder()
        .add_source(config::File::from_str(
            &read("config/default.toml"),
            config::FileFormat::Toml,
        ))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap()
}

/// Variables other than `SESSIOND__SECTION__KEY` that sessiond reads (src/config.rs).
const OTHER_VARIABLES: [&str; 4] = [
    "SESSIOND_ENV",
    "SESSIOND_CONFIG_DIR",
    "PORT",
    "DATABASE_URL",
];

/// Panics unless `variable` is one sessiond reads: `SESSIOND__SECTION__KEY` naming a setting
/// of config/default.toml, or one of [`OTHER_VARIABLES`].
fn assert_is_a_setting(variable: &str, defaults: &Json, whose: &str) {
    if OTHER_VARIABLES.contains(&variable) {
        return;
    }
    let path = variable
        .strip_prefix("SESSIOND__")
        .unwrap_or_else(|| panic!("{whose}: {variable} is not a variable sessiond reads"));
    let mut node = defaults;
    for key in path.to_ascii_lowercase().split("__") {
        node = node.get(key).unwrap_or_else(|| {
            panic!("{whose}: {variable} names no setting of config/default.toml")
        });
    }
    assert!(
        !node.is_object(),
        "{whose}: {variable} names a whole section, not a setting"
    );
}

fn served_get_routes() -> BTreeSet<&'static str> {
    sessiond::http::routes::table()
        .into_iter()
        .filter(|r| r.method == actix_web::http::Method::GET)
        .map(|r| r.path)
        .collect()
}

/// The readiness route: the one a host must wait for before routing traffic to an instance.
const READINESS: &str = "/readyz";

fn assert_health_check(path: &str, whose: &str) {
    assert!(
        served_get_routes().contains(path),
        "{whose}: health check {path} is not a GET route of sessiond::http::routes::table()"
    );
    assert_eq!(
        path, READINESS,
        "{whose}: the health check must be the readiness route (a new instance takes traffic \
         only once its database answers), not liveness"
    );
}

fn assert_names_the_dockerfile(path: &str, context: &str, whose: &str) {
    let relative = normalize(&Path::new(context).join(path));
    assert_eq!(
        relative,
        Path::new("Dockerfile"),
        "{whose}: builds {} instead of the Dockerfile at the repository root",
        relative.display()
    );
    assert_in_repository(&relative.to_string_lossy(), whose);
}

/// Fields of the Render Blueprint spec and of Railway's config-as-code schema that these files
/// may use. A field outside them is a typo the host would silently ignore (say Railway's
/// `healthcheckPath` in render.yaml, where the field is `healthCheckPath`).
#[rustfmt::skip]
const RENDER_ROOT_FIELDS: &[&str] = &[
    "services", "databases", "envVarGroups", "previews", "projects", "ungrouped",
];
#[rustfmt::skip]
const RENDER_WEB_FIELDS: &[&str] = &[
    "type", "name", "runtime", "repo", "branch", "region", "plan", "rootDir", "dockerfilePath",
    "dockerContext", "dockerCommand", "registryCredential", "image", "numInstances", "scaling",
    "healthCheckPath", "envVars", "disk", "domains", "autoDeploy", "autoDeployTrigger",
    "buildFilter", "preDeployCommand", "maxShutdownDelaySeconds", "previews",
];
#[rustfmt::skip]
const RAILWAY_ROOT_FIELDS: &[&str] = &["$schema", "build", "deploy", "environments"];
#[rustfmt::skip]
const RAILWAY_BUILD_FIELDS: &[&str] = &["builder", "dockerfilePath", "watchPatterns", "buildCommand"];
#[rustfmt::skip]
const RAILWAY_DEPLOY_FIELDS: &[&str] = &[
    "startCommand", "preDeployCommand", "healthcheckPath", "healthcheckTimeout",
    "restartPolicyType", "restartPolicyMaxRetries", "overlapSeconds", "drainingSeconds",
    "numReplicas", "multiRegionConfig", "sleepApplication", "cronSchedule",
];

fn assert_known_fields(present: BTreeSet<String>, known: &[&str], whose: &str) {
    let unknown: Vec<String> = present
        .into_iter()
        .filter(|field| !known.contains(&field.as_str()))
        .collect();
    assert!(unknown.is_empty(), "{whose}: unknown fields {unknown:?}");
}

// ---------------------------------------------------------------------------------------------
// The Dockerfile

#[test]
fn every_file_the_dockerfile_copies_is_in_the_repository_and_the_build_context() {
    let stages = dockerfile();
    let ignored = dockerignore();
    let mut copied = 0;
    for stage in &stages {
        for (_, copy) in stage.copies().into_iter().filter(|(_, c)| c.from.is_none()) {
            for source in &copy.sources {
                let source = normalize(Path::new(source)).to_string_lossy().into_owned();
                assert_in_repository(&source, "Dockerfile COPY");
                assert!(
                    !dockerignored(&source, &ignored),
                    "Dockerfile COPY {source}: .dockerignore leaves it out of the build context"
                );
                copied += 1;
            }
        }
    }
    assert!(
        copied > 0,
        "the Dockerfile copies nothing from the repository"
    );
}

#[test]
fn the_build_stage_sees_every_file_the_crate_needs_before_cargo_builds() {
    let stages = dockerfile();
    let (stage, build_at) = build_stage(&stages);
    let workdir = stage.workdir_at(build_at);
    let targets = cargo_targets();
    let embedded = embedded_files();
    for expected in [
        "config/default.toml",
        "openapi.yaml",
        "migrations/sqlite",
        "migrations/postgres",
    ] {
        assert!(
            embedded.contains(expected),
            "src/ no longer embeds {expected}: found {embedded:?}"
        );
    }
    let mut needed: BTreeSet<String> = embedded;
    needed.extend([
        "Cargo.toml".to_string(),
        "Cargo.lock".to_string(),
        targets.lib_path,
    ]);
    needed.extend(targets.bins.into_iter().map(|(_, path)| path));

    let ignored = dockerignore();
    let copies = stage.copies();
    for file in &needed {
        assert_in_repository(file, "needed to build");
        assert!(
            !dockerignored(file, &ignored),
            "{file} is needed to build but .dockerignore leaves it out"
        );
        let landed = copies
            .iter()
            .filter(|(index, copy)| *index < build_at && copy.from.is_none())
            .flat_map(|(index, copy)| {
                copy.sources
                    .iter()
                    .filter(|s| *file == **s || file.starts_with(&format!("{s}/")))
                    .map(move |s| copy.landing(s, file, &stage.workdir_at(*index)))
            })
            .any(|landing| landing == workdir.join(file));
        assert!(
            landed,
            "{file} is not copied to {} before `cargo build` runs",
            workdir.join(file).display()
        );
    }
}

#[test]
fn the_image_runs_the_binary_cargo_builds() {
    let bin = cargo_bin();
    let stages = dockerfile();
    let (builder, build_at) = build_stage(&stages);
    let built = builder
        .workdir_at(build_at)
        .join("target/release")
        .join(&bin);

    // Every file named directly under target/release/ is the binary (rm, strip, …).
    for instruction in builder.all("RUN") {
        for word in instruction.args.split_whitespace() {
            if let Some(name) = word.strip_prefix("target/release/")
                && !name.contains('/')
            {
                assert_eq!(
                    name, bin,
                    "RUN {}: target/release/{name} is not the binary",
                    instruction.args
                );
            }
        }
    }

    let runtime = stages.last().unwrap();
    let installed: Vec<PathBuf> = runtime
        .copies()
        .into_iter()
        .filter(|(_, c)| c.from.is_some())
        .map(|(index, copy)| {
            assert_eq!(
                copy.from.as_deref(),
                builder.name.as_deref(),
                "COPY --from names a stage other than the build stage"
            );
            assert_eq!(
                copy.sources,
                vec![built.to_string_lossy().into_owned()],
                "the runtime image copies something other than the binary Cargo builds"
            );
            normalize(&runtime.workdir_at(index).join(&copy.dest))
        })
        .collect();
    assert_eq!(
        installed.len(),
        1,
        "the runtime image installs the binary once"
    );
    let installed = &installed[0];

    let command: Vec<String> = runtime
        .all("ENTRYPOINT")
        .chain(runtime.all("CMD"))
        .flat_map(|i| {
            serde_json::from_str::<Vec<String>>(&i.args).unwrap_or_else(|_| {
                panic!(
                    "{} {}: use the exec form [\"…\"], so that sessiond is PID 1 and receives \
                     the host's SIGTERM",
                    i.keyword, i.args
                )
            })
        })
        .collect();
    let program = command.first().expect("the image has no CMD");
    let on_path = ["/usr/local/bin", "/usr/bin", "/bin"]
        .iter()
        .any(|dir| installed.parent() == Some(Path::new(dir)));
    assert!(
        Path::new(program) == installed.as_path()
            || (on_path && installed.file_name() == Some(program.as_ref())),
        "the image runs {program:?}, but the binary is installed at {}",
        installed.display()
    );
    assert_eq!(
        installed.file_name().and_then(|n| n.to_str()),
        Some(bin.as_str()),
        "the binary is installed under another name than [[bin]] {bin}"
    );
    assert_eq!(
        command.get(1).map(String::as_str),
        Some("serve"),
        "the image does not serve"
    );
}

#[test]
fn the_runtime_image_is_set_up_for_production() {
    let stages = dockerfile();
    let runtime = stages.last().unwrap();
    let env = runtime.env();
    let workdir = runtime.workdir_at(runtime.instructions.len());

    // config/$SESSIOND_ENV.toml from the repository, where sessiond looks for it.
    let sessiond_env = env.get("SESSIOND_ENV").map(String::as_str);
    assert_eq!(
        sessiond_env,
        Some("production"),
        "the image does not set SESSIOND_ENV=production"
    );
    let config_dir = env
        .get("SESSIOND_CONFIG_DIR")
        .map(|dir| normalize(&workdir.join(dir)))
        .unwrap_or_else(|| workdir.join("config"));
    let env_file = "config/production.toml";
    assert_in_repository(env_file, "SESSIOND_ENV=production");
    let copied = runtime.copies().iter().any(|(index, copy)| {
        copy.from.is_none()
            && copy
                .sources
                .iter()
                .filter(|s| env_file.starts_with(&format!("{s}/")) || env_file == s.as_str())
                .any(|s| {
                    copy.landing(s, env_file, &runtime.workdir_at(*index))
                        == config_dir.join("production.toml")
                })
    });
    assert!(
        copied,
        "{env_file} is not copied into {}",
        config_dir.display()
    );

    // The port: whatever the host sets in PORT, 8080 by default, and that is the one exposed.
    let port = env.get("PORT").expect("the image sets no default PORT");
    let exposed: Vec<&str> = runtime.all("EXPOSE").map(|i| i.args.as_str()).collect();
    assert_eq!(
        exposed,
        vec![port.as_str()],
        "EXPOSE differs from the default PORT"
    );

    // Not root, and no VOLUME: Railway refuses to build a Dockerfile that declares one.
    let user: Vec<&str> = runtime.all("USER").map(|i| i.args.as_str()).collect();
    let user = user.last().expect("the image runs as root");
    assert!(
        !["root", "0", "0:0", "root:root"].contains(user),
        "the image runs as root ({user})"
    );
    assert_eq!(
        runtime.all("VOLUME").count(),
        0,
        "VOLUME makes Railway refuse the build"
    );

    // The default SQLite file: an absolute path in a directory the image's user may write.
    let url = env
        .get("SESSIOND__DATABASE__URL")
        .expect("the image sets no default database");
    let file = url
        .strip_prefix("sqlite://")
        .expect("the image's default database is a SQLite file");
    assert!(
        file.starts_with('/'),
        "{url}: a relative path depends on the working directory"
    );
    let dir = Path::new(file)
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let uid = user.split(':').next().unwrap();
    let runs: Vec<&str> = runtime.all("RUN").map(|i| i.args.as_str()).collect();
    assert!(
        runs.iter().any(|r| r.contains(&format!("mkdir -p {dir}"))),
        "the image does not create {dir}"
    );
    assert!(
        runs.iter()
            .any(|r| r.contains("chown") && r.contains(&dir) && r.contains(uid)),
        "{dir} is not given to user {uid}"
    );
}

/// A `# syntax=` parser directive makes BuildKit fetch that frontend from Docker Hub before it
/// builds anything; the built-in frontend reads this Dockerfile.
#[test]
fn the_dockerfile_needs_no_frontend_from_a_registry() {
    for line in read("Dockerfile").lines() {
        let directive = line
            .trim_start()
            .strip_prefix('#')
            .map(|rest| rest.trim_start().to_ascii_lowercase());
        assert!(
            !directive.is_some_and(|d| d.starts_with("syntax")),
            "Dockerfile: `{line}` makes BuildKit pull a frontend from a registry"
        );
    }
}

/// The Dockerfile is built and the image run in CI (scripts/container-test), after the README's
/// test command, so that a Dockerfile that does not build fails there first.
#[test]
fn ci_builds_the_image_and_runs_it() {
    assert_in_repository("scripts/container-test", ".ci/run");
    let ci = read(".ci/run");
    let step = |script: &str| ci.lines().position(|line| line.trim() == script);
    let tests = step("./scripts/test").expect(".ci/run does not run ./scripts/test");
    let image =
        step("./scripts/container-test").expect(".ci/run does not run ./scripts/container-test");
    assert!(
        tests < image,
        ".ci/run builds the image before the README's test command"
    );
}

// ---------------------------------------------------------------------------------------------
// The blueprints

#[test]
fn render_blueprint_builds_the_dockerfile_and_waits_for_readiness() {
    let render = render();
    assert_known_fields(yaml_keys(&render), RENDER_ROOT_FIELDS, "render.yaml");

    let web = render_web_service(&render);
    assert_known_fields(yaml_keys(web), RENDER_WEB_FIELDS, "render.yaml web service");

    assert_eq!(
        web["runtime"].as_str(),
        Some("docker"),
        "render.yaml: not built from the Dockerfile"
    );
    assert!(
        web["image"].is_null(),
        "render.yaml: a prebuilt image instead of the Dockerfile"
    );
    let context = web["dockerContext"].as_str().unwrap_or(".");
    let root = web["rootDir"].as_str().unwrap_or(".");
    assert_names_the_dockerfile(
        web["dockerfilePath"].as_str().unwrap_or("Dockerfile"),
        root,
        "render.yaml dockerfilePath",
    );
    assert_eq!(
        normalize(&Path::new(root).join(context)),
        PathBuf::new(),
        "render.yaml: the Docker build context must be the repository root, where the \
         Dockerfile's COPY sources are"
    );
    assert!(
        web["dockerCommand"].is_null(),
        "render.yaml: dockerCommand replaces the image's CMD"
    );
    assert_health_check(
        web["healthCheckPath"]
            .as_str()
            .expect("render.yaml: no healthCheckPath"),
        "render.yaml",
    );
}

#[test]
fn render_blueprint_wires_its_database_and_sets_only_real_settings() {
    let render = render();
    let web = render_web_service(&render);
    let databases = render["databases"]
        .as_sequence()
        .expect("render.yaml: no databases");
    let defaults = default_settings();

    let mut seen = BTreeSet::new();
    let mut database_url = None;
    for var in web["envVars"]
        .as_sequence()
        .expect("render.yaml: no envVars")
    {
        let key = var["key"]
            .as_str()
            .expect("render.yaml: an envVar without key");
        assert!(
            seen.insert(key.to_string()),
            "render.yaml: {key} is set twice"
        );
        assert_is_a_setting(key, &defaults, "render.yaml");
        let sources = [
            "value",
            "fromDatabase",
            "fromService",
            "generateValue",
            "sync",
        ]
        .iter()
        .filter(|s| !var[**s].is_null())
        .count();
        assert_eq!(
            sources, 1,
            "render.yaml: {key} needs exactly one of value, fromDatabase, …"
        );
        if key == "DATABASE_URL" {
            database_url = Some(&var["fromDatabase"]);
        }
    }
    for required in [
        "DATABASE_URL",
        "SESSIOND__SERVER__PUBLIC_URL",
        "SESSIOND__SERVER__TRUST_PROXY",
        "SESSIOND__METRICS__BEARER_TOKEN",
        "SESSIOND__MAIL__URL",
        "SESSIOND__MAIL__FROM",
        "SESSIOND__ACCOUNTS__LINK_URL",
    ] {
        assert!(
            seen.contains(required),
            "render.yaml: production needs {required}"
        );
    }

    let from = database_url.unwrap();
    assert_eq!(
        from["property"].as_str(),
        Some("connectionString"),
        "render.yaml: DATABASE_URL must be the database's connection string"
    );
    let name = from["name"]
        .as_str()
        .expect("render.yaml: DATABASE_URL names no database");
    let database = databases
        .iter()
        .find(|d| d["name"].as_str() == Some(name))
        .unwrap_or_else(|| {
            panic!("render.yaml: DATABASE_URL names {name}, which is not in databases")
        });
    assert_eq!(
        web["region"], database["region"],
        "render.yaml: the service and its database must share a region for the internal URL"
    );

    // Several instances need PostgreSQL and no disk: a disk pins a Render service to one.
    let instances = web["numInstances"].as_u64().unwrap_or(1)
        + web["scaling"]["maxInstances"].as_u64().unwrap_or(0);
    if instances > 1 {
        assert!(
            web["disk"].is_null(),
            "render.yaml: several instances with a disk"
        );
    }
}

#[test]
fn railway_config_builds_the_dockerfile_and_waits_for_readiness() {
    let railway = railway();
    assert_eq!(
        railway["$schema"].as_str(),
        Some("https://railway.com/railway.schema.json"),
        "railway.json: not Railway's config-as-code schema"
    );
    assert_known_fields(json_keys(&railway), RAILWAY_ROOT_FIELDS, "railway.json");

    let build = &railway["build"];
    assert_known_fields(json_keys(build), RAILWAY_BUILD_FIELDS, "railway.json build");
    assert_eq!(
        build["builder"].as_str(),
        Some("DOCKERFILE"),
        "railway.json: not the Dockerfile builder"
    );
    assert!(
        build["buildCommand"].is_null(),
        "railway.json: a buildCommand next to a Dockerfile"
    );
    assert_names_the_dockerfile(
        build["dockerfilePath"].as_str().unwrap_or("Dockerfile"),
        ".",
        "railway.json dockerfilePath",
    );

    let deploy = &railway["deploy"];
    assert_known_fields(
        json_keys(deploy),
        RAILWAY_DEPLOY_FIELDS,
        "railway.json deploy",
    );
    assert!(
        deploy["startCommand"].is_null(),
        "railway.json: startCommand replaces the image's CMD"
    );
    assert!(
        deploy["cronSchedule"].is_null(),
        "railway.json: sessiond is a service, not a cron job"
    );
    assert_health_check(
        deploy["healthcheckPath"]
            .as_str()
            .expect("railway.json: no healthcheckPath"),
        "railway.json",
    );
    let restart = deploy["restartPolicyType"].as_str();
    assert!(
        matches!(restart, Some("ON_FAILURE" | "ALWAYS")),
        "railway.json: restartPolicyType {restart:?}: a crashed sessiond must come back"
    );
    // Railway rejects the whole file when these are strings.
    for field in [
        "healthcheckTimeout",
        "restartPolicyMaxRetries",
        "overlapSeconds",
        "drainingSeconds",
        "numReplicas",
    ] {
        let value = &deploy[field];
        assert!(
            value.is_null() || value.is_u64(),
            "railway.json: deploy.{field} must be a JSON number, not {value}"
        );
    }
    // Railway's default is SIGKILL right after SIGTERM, which cuts requests in flight.
    assert!(
        deploy["drainingSeconds"].as_u64().unwrap_or(0) > 0,
        "railway.json: no time between SIGTERM and SIGKILL"
    );
}

#[test]
fn the_readme_names_only_settings_that_exist_and_every_one_the_blueprint_sets() {
    let readme = read("README.md");
    let defaults = default_settings();
    let mut named = BTreeSet::new();
    for (at, _) in readme.match_indices("SESSIOND__") {
        let name: String = readme[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        // The README spells the general form once.
        if name != "SESSIOND__SECTION__KEY" {
            named.insert(name);
        }
    }
    assert!(!named.is_empty(), "README.md names no SESSIOND__ setting");
    for name in &named {
        assert_is_a_setting(name, &defaults, "README.md");
    }

    let deploy = readme
        .split("\n## ")
        .find(|section| section.starts_with("Deploy\n"))
        .expect("README.md has no \"## Deploy\" section");
    let render = render();
    for var in render_web_service(&render)["envVars"]
        .as_sequence()
        .unwrap()
    {
        let key = var["key"].as_str().unwrap();
        assert!(
            deploy.contains(key),
            "README.md, Deploy: render.yaml sets {key}, which the section does not explain"
        );
    }
}

/// The `docker run` commands of the README, continuation lines joined.
fn readme_docker_runs() -> Vec<String> {
    let mut commands = Vec::new();
    let mut pending: Option<String> = None;
    for line in read("README.md").lines().map(str::trim) {
        if pending.is_none() && !line.starts_with("docker run ") {
            continue;
        }
        let command = pending.get_or_insert_with(String::new);
        match line.strip_suffix('\\') {
            Some(head) => command.push_str(head),
            None => {
                command.push_str(line);
                commands.extend(pending.take());
            }
        }
    }
    commands
}

/// `docker stop` sends SIGKILL 10 s after SIGTERM unless told otherwise: shorter than the drain
/// and the requests in flight. And the README's port is published on every interface, so
/// `/metrics` must ask for its token there.
#[test]
fn the_readmes_docker_run_waits_for_the_drain_and_guards_metrics() {
    let defaults = default_settings();
    let server = &defaults["server"];
    let needed = server["shutdown_drain_secs"].as_u64().unwrap()
        + server["shutdown_timeout_secs"].as_u64().unwrap();
    let commands = readme_docker_runs();
    assert!(!commands.is_empty(), "README.md has no `docker run`");
    for command in &commands {
        let stop_timeout = command
            .split_whitespace()
            .skip_while(|word| *word != "--stop-timeout")
            .nth(1)
            .and_then(|word| word.parse::<u64>().ok())
            .unwrap_or_else(|| {
                panic!(
                    "README.md: `{command}` sets no --stop-timeout (the default, 10 s, is \
                     shorter than drain + in-flight timeout, {needed} s)"
                )
            });
        assert!(
            stop_timeout > needed,
            "README.md: `{command}`: --stop-timeout {stop_timeout} is not above drain + \
             in-flight timeout ({needed} s)"
        );
        assert!(
            command.contains("SESSIOND__METRICS__BEARER_TOKEN"),
            "README.md: `{command}` leaves /metrics open to anyone who reaches the port"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The image's configuration, started

/// A stand-in for a value the Blueprint asks the operator for when it is created.
fn asked_for(key: &str) -> Option<&'static str> {
    match key {
        "SESSIOND__MAIL__URL" => Some("smtps://mailer:secret@smtp.deploy-test.example"),
        "SESSIOND__MAIL__FROM" => Some("Example <no-reply@deploy-test.example>"),
        "SESSIOND__ACCOUNTS__LINK_URL" => Some("https://app.deploy-test.example/auth"),
        _ => None,
    }
}

/// The binary with only the image's environment (paths mapped into this checkout), the Render
/// blueprint's values, and a database of its own: it must start and answer the health check
/// with 200, with the public URL the blueprint asks for as its issuer.
#[tokio::test]
async fn the_production_configuration_starts_and_passes_the_health_check() {
    let stages = dockerfile();
    let runtime = stages.last().unwrap();
    let mut env = runtime.env();

    // The image's SESSIOND_CONFIG_DIR, read from this checkout's copy of it.
    if let Some(dir) = env.get("SESSIOND_CONFIG_DIR").cloned() {
        let local = runtime
            .copies()
            .into_iter()
            .filter(|(_, c)| c.from.is_none())
            .find_map(|(index, copy)| {
                let dest = normalize(&runtime.workdir_at(index).join(&copy.dest));
                (dest == Path::new(&dir)).then(|| repo().join(&copy.sources[0]))
            })
            .unwrap_or_else(|| panic!("SESSIOND_CONFIG_DIR={dir} is not filled by a COPY"));
        env.insert(
            "SESSIOND_CONFIG_DIR".into(),
            local.to_string_lossy().into_owned(),
        );
    }

    let render = render();
    // The public URL the blueprint asks for when it is created (or sets itself).
    let mut public_url = "https://auth.deploy-test.example".to_string();
    for var in render_web_service(&render)["envVars"]
        .as_sequence()
        .unwrap()
    {
        let key = var["key"].as_str().unwrap().to_string();
        if let Some(value) = var["value"].as_str() {
            if key == "SESSIOND__SERVER__PUBLIC_URL" {
                public_url = value.to_string();
            }
            env.insert(key, value.to_string());
        } else if key == "SESSIOND__SERVER__PUBLIC_URL" {
            env.insert(key, public_url.clone());
        } else if let Some(value) = asked_for(&key) {
            // What the operator types when the Blueprint asks (the mail server is not reached
            // to pass the health check: mail waits in the outbox).
            env.insert(key, value.to_string());
        } else if var["generateValue"].as_bool() == Some(true) {
            // What Render generates: a base64-encoded 256-bit value.
            use base64::Engine;
            let bytes: [u8; 32] = rand::random();
            let value = base64::engine::general_purpose::STANDARD.encode(bytes);
            env.insert(key, value);
        }
    }

    let dir = std::env::temp_dir().join(format!("sessiond-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Render's connection string is PostgreSQL; a SQLite file of its own stands in for it here.
    env.insert(
        "DATABASE_URL".into(),
        format!("sqlite://{}", dir.join("sessiond.db").display()),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.insert("PORT".into(), port.to_string());
    // Only on the loopback interface during the test.
    env.insert("SESSIOND__SERVER__HOST".into(), "127.0.0.1".into());

    let mut child = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .arg("serve")
        .env_clear()
        .envs(&env)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let http = reqwest::Client::new();
    let health = render_web_service(&render)["healthCheckPath"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("http://127.0.0.1:{port}{health}");
    let mut status = None;
    for _ in 0..200 {
        if let Ok(Some(exit)) = child.try_wait() {
            let output = child.wait_with_output().unwrap();
            panic!(
                "sessiond exited ({exit}) with the production configuration {env:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if let Ok(response) = http.get(&url).send().await {
            status = Some(response.status().as_u16());
            if status == Some(200) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let discovery: Option<Json> = match http
        .get(format!(
            "http://127.0.0.1:{port}/.well-known/openid-configuration"
        ))
        .send()
        .await
    {
        Ok(response) => response.json().await.ok(),
        Err(_) => None,
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(status, Some(200), "{health} did not answer 200 within 20 s");
    assert_eq!(
        discovery.as_ref().and_then(|d| d["issuer"].as_str()),
        Some(public_url.trim_end_matches('/')),
        "the issuer is not the public URL the blueprint sets"
    );
}
