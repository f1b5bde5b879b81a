//! The harness's layering, checked on its source: every module lives in
//! one of the layer folders (`runtime/`, `facts/`, `actors/`, `flows/`, in
//! that order), imports only its own layer and the ones below it, and no
//! two modules import each other, directly or round a cycle. Only the
//! modules at the crate's root (the runner's API, the undo dispatch) may
//! import any layer.
//!
//! Imports are read from the code, not from comments: `crate::LAYER::MODULE`
//! paths, `crate::{…}` groups, and the root's re-exports (`crate::Evidence`
//! is `runtime::evidence`). The checker itself is shown to flip on a made-up
//! tree with an upward import and one with a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const LAYERS: [&str; 4] = ["runtime", "facts", "actors", "flows"];

/// A module: its layer folder (None at the crate's root) and its name
/// (`actors::pki` for every file under `actors/pki/`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Module {
    layer: Option<&'static str>,
    name: String,
}

impl Module {
    /// From a path relative to `src/`: `flows/login.rs`, `actors/pki/mod.rs`.
    fn of(relative: &str) -> Option<Module> {
        let parts: Vec<&str> = relative.trim_end_matches(".rs").split('/').collect();
        let layer = LAYERS.iter().find(|l| **l == parts[0]).copied();
        let name = match (layer, parts.as_slice()) {
            (Some(_), [_, "mod"]) => return None, // the layer's own index
            (Some(l), [_, module, ..]) => format!("{l}::{module}"),
            (None, [module]) => (*module).to_owned(),
            _ => return None,
        };
        Some(Module { layer, name })
    }

    /// 0 for runtime … 3 for flows; the root above them all.
    fn rank(&self) -> usize {
        self.layer
            .and_then(|l| LAYERS.iter().position(|x| *x == l))
            .unwrap_or(LAYERS.len())
    }
}

/// The code of a file without comments (doc links are not imports).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The root's re-exports: `pub use actors::user::TestUser;` makes
/// `crate::TestUser` an import of `actors::user`.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for line in code_of(lib).lines() {
        let Some(path) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let path = path.trim_end_matches(';');
        let (module, names) = match path.split_once("::{") {
            Some((m, names)) => (m, names.trim_end_matches('}').split(',').collect()),
            None => match path.rsplit_once("::") {
                Some((m, name)) => (m, vec![name]),
                None => continue,
            },
        };
        let mut segments = module.split("::");
        if let (Some(layer), Some(name)) = (segments.next(), segments.next()) {
            for n in names {
                found.insert(n.trim().to_owned(), format!("{layer}::{name}"));
            }
        }
    }
    found
}

/// The modules a file's code refers to through `crate::`.
fn imports(code: &str, reexported: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let paths: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
            None => vec![rest],
        };
        for path in paths {
            let ident = |s: &str| -> String {
                s.trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()
            };
            let first = ident(path);
            let after = path
                .trim()
                .strip_prefix(first.as_str())
                .and_then(|r| r.strip_prefix("::"))
                .unwrap_or("");
            if LAYERS.contains(&first.as_str()) {
                // `crate::flows::login` or `crate::flows::{login, pty::X}`
                let seconds: Vec<String> = match after.strip_prefix('{') {
                    Some(group) => group
                        .split('}')
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .map(ident)
                        .collect(),
                    None => vec![ident(after)],
                };
                for second in seconds.into_iter().filter(|s| !s.is_empty()) {
                    found.insert(format!("{first}::{second}"));
                }
            } else if let Some(module) = reexported.get(&first) {
                found.insert(module.clone());
            } else if !first.is_empty() {
                found.insert(first);
            }
        }
    }
    found
}

/// Every violation in a source tree given as (path relative to `src/`,
/// text) pairs: an import of a higher layer, an import of a root module
/// from a layer, an unknown module, a cycle.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let lib = files
        .iter()
        .find(|(p, _)| p == "lib.rs")
        .map_or("", |(_, t)| t.as_str());
    let reexported = reexports(lib);
    let mut modules: BTreeMap<String, Module> = BTreeMap::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut found = Vec::new();
    for (path, text) in files {
        if path.contains('/') && !LAYERS.iter().any(|l| path.starts_with(&format!("{l}/"))) {
            found.push(format!(
                "{path}: not in a layer folder ({})",
                LAYERS.join(", ")
            ));
        }
        let Some(module) = Module::of(path) else {
            continue;
        };
        let deps = edges.entry(module.name.clone()).or_default();
        deps.extend(
            imports(&code_of(text), &reexported)
                .into_iter()
                .filter(|d| *d != module.name),
        );
        modules.insert(module.name.clone(), module);
    }
    for (path, text) in files.iter().filter(|(p, _)| p.starts_with("facts/")) {
        found.extend(writes_from_facts(path, text));
    }
    for (from, deps) in &edges {
        let from = &modules[from];
        for to in deps {
            let Some(target) = modules.get(to) else {
                found.push(format!("{}: imports unknown module {to}", from.name));
                continue;
            };
            if from.layer.is_some() && target.rank() > from.rank() {
                found.push(format!(
                    "{} imports {to}: a higher layer (imports go downward: {})",
                    from.name,
                    LAYERS.join(" < ")
                ));
            }
        }
    }
    found.extend(cycles(&edges));
    found
}

/// What a facts module must not do, since facts are "read without changing
/// anything": record an undo (it changed something), start a listener, a
/// thread that outlives the call, or an account tool that writes. Its
/// unit tests (from `#[cfg(test)]` on) may.
const WRITER_MARKERS: [(&str, &str); 12] = [
    ("journal::record", "records an undo"),
    ("runtime::journal", "uses the undo journal"),
    ("TcpListener::bind", "starts a listener"),
    ("UdpSocket::bind", "binds a socket"),
    ("thread::spawn", "starts a thread"),
    ("\"useradd\"", "runs useradd"),
    ("\"usermod\"", "runs usermod"),
    ("\"userdel\"", "runs userdel"),
    ("\"groupadd\"", "runs groupadd"),
    ("\"groupdel\"", "runs groupdel"),
    ("\"gpasswd\"", "runs gpasswd"),
    ("\"chpasswd\"", "runs chpasswd"),
];

fn writes_from_facts(path: &str, text: &str) -> Vec<String> {
    let code = code_of(text);
    let code = code.split("#[cfg(test)]").next().unwrap_or("");
    WRITER_MARKERS
        .iter()
        .filter(|(marker, _)| code.contains(marker))
        .map(|(marker, what)| {
            format!("{path}: a facts module {what} ({marker}): facts only read; move it to actors or flows")
        })
        .collect()
}

/// A cycle for each strongly connected group of modules (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<String>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a str) {
            let i = self.index.len();
            self.index.insert(node, i);
            self.low.insert(node, i);
            self.stack.push(node);
            for next in self.edges.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.edges.contains_key(next) {
                    continue;
                }
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.stack.contains(&next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let at = self.stack.iter().position(|n| *n == node).unwrap_or(0);
                let group: Vec<&str> = self.stack.split_off(at);
                if group.len() > 1 {
                    self.found
                        .push(format!("import cycle: {}", group.join(" -> ")));
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found
}

fn read_tree(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read harness/src") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            read_tree(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(root)
                .expect("under src")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).expect("read a source file");
            files.push((relative, text));
        }
    }
}

#[test]
fn the_harness_is_layered_and_acyclic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_tree(&root, &root, &mut files);
    assert!(files.len() > 30, "only {} files read", files.len());
    let found = violations(&files);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

fn tree(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect()
}

const LIB: &str = "pub mod runtime;\npub use runtime::evidence::Evidence;\n";

#[test]
fn an_upward_import_is_caught() {
    let files = tree(&[
        ("lib.rs", LIB),
        ("runtime/evidence.rs", ""),
        ("runtime/process.rs", "use crate::actors::server::Server;\n"),
        (
            "actors/server.rs",
            "use crate::Evidence;\n// crate::flows::x in a comment\n",
        ),
    ]);
    let found = violations(&files);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("runtime::process imports actors::server"));
}

#[test]
fn a_cycle_is_caught() {
    let files = tree(&[
        ("lib.rs", LIB),
        (
            "flows/login.rs",
            "use crate::flows::{dialogue::Attempt, pty};\n",
        ),
        ("flows/dialogue.rs", "fn f() -> crate::flows::login::X {}\n"),
        ("flows/pty.rs", "use crate::Evidence;\n"),
        ("runtime/evidence.rs", ""),
    ]);
    let found = violations(&files);
    assert_eq!(found, ["import cycle: flows::dialogue -> flows::login"]);
}

#[test]
fn a_module_outside_the_layers_is_caught() {
    let files = tree(&[("lib.rs", LIB), ("helpers/misc.rs", "")]);
    assert_eq!(violations(&files).len(), 1);
}

#[test]
fn a_facts_module_that_changes_the_system_is_caught() {
    let files = tree(&[
        ("lib.rs", LIB),
        ("runtime/evidence.rs", ""),
        (
            "facts/decoy.rs",
            "fn f() { let l = std::net::TcpListener::bind(\"127.0.0.1:0\"); }\n",
        ),
        (
            "facts/accounts.rs",
            "fn g() { Command::new(\"userdel\"); }\n#[cfg(test)]\nmod tests { fn t() { std::thread::spawn(|| {}); } }\n",
        ),
        ("facts/shadow.rs", "fn h() { Command::new(\"chage\").arg(\"-l\"); }\n"),
    ]);
    let found = violations(&files);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("facts/decoy.rs: a facts module starts a listener"));
    assert!(found[1].starts_with("facts/accounts.rs: a facts module runs userdel"));
}
