//! Delivery files that must stay in step with the code: the Debian package's
//! dependencies, debian/copyright, the man page and the Isar recipe's crate
//! list. Plain file checks, no root needed.

use fr1_acceptance::repo_root;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

fn read(rel: &str) -> String {
    fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// Every `*.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A crate of Cargo.lock fetched from crates.io: (name, version, sha256).
fn registry_crates() -> Vec<(String, String, String)> {
    let lock = read("Cargo.lock");
    let mut crates = Vec::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |name: &str| {
            block.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|r| r.trim_start().strip_prefix('='))
                    .map(|v| v.trim().trim_matches('"').to_owned())
            })
        };
        if let (Some(name), Some(version), Some(sum)) =
            (field("name"), field("version"), field("checksum"))
        {
            crates.push((name, version, sum));
        }
    }
    assert!(!crates.is_empty(), "no registry crates found in Cargo.lock");
    crates
}

/// Fields of the binary package paragraph of debian/control, comments
/// dropped and continuation lines joined.
fn binary_package_fields() -> BTreeMap<String, String> {
    let control = read("debian/control");
    let paragraph = control
        .split("\n\n")
        .find(|p| p.lines().any(|l| l.starts_with("Package:")))
        .expect("a Package: paragraph in debian/control");
    let mut fields = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in paragraph.lines().filter(|l| !l.starts_with('#')) {
        if line.starts_with([' ', '\t']) {
            if let Some(name) = &current {
                let v: &mut String = fields.get_mut(name).expect("field");
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.insert(name.to_owned(), value.trim().to_owned());
            current = Some(name.to_owned());
        }
    }
    fields
}

/// Package names of a relationship field (alternatives and versions dropped).
fn relation_names(field: &str) -> BTreeSet<String> {
    field
        .split([',', '|'])
        .map(|r| r.split_whitespace().next().unwrap_or("").to_owned())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Program names in `Command::new("x")`, `console_command("x")`,
/// `find_program("x")`, `sh(ev, "x", args)`, and the same calls with a
/// `&str` constant naming the program (`SSHD = "/usr/sbin/sshd"`).
fn programs_run_by_the_code() -> BTreeMap<String, String> {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in ["src", "harness/src", "tests/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let text = fs::read_to_string(f).expect("source file");
            (
                f.strip_prefix(&root).unwrap_or(f).display().to_string(),
                text,
            )
        })
        .collect();
    // `const NAME: &str = "program";` anywhere in the code (only those
    // given to Command::new or sh() below count).
    let mut path_consts = BTreeMap::new();
    for (_, text) in &sources {
        for piece in text.split("const ").skip(1) {
            let Some((name, rest)) = piece.split_once(": &str = \"") else {
                continue;
            };
            let value = rest.split('"').next().unwrap_or("");
            if !value.is_empty() && !value.contains([':', ' ']) {
                path_consts.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }
    let mut found = BTreeMap::new();
    for (shown, text) in &sources {
        // The program's argument: the first one, or the second for
        // `harness::runtime::command::sh(ev, program, args)`.
        let mut arguments: Vec<&str> = Vec::new();
        for call in ["Command::new(", "console_command(", "find_program("] {
            arguments.extend(text.split(call).skip(1));
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find("sh(") {
            let before = rest[..at].chars().next_back();
            let after = &rest[at + 3..];
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                if let Some((_, second)) = after.split_once(',') {
                    arguments.push(second.trim_start());
                }
            }
            rest = after;
        }
        for piece in arguments {
            let program = if let Some(literal) = piece.strip_prefix('"') {
                literal.split('"').next().unwrap_or("").to_owned()
            } else {
                let ident: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                match path_consts.get(&ident) {
                    Some(path) => path.clone(),
                    None => continue,
                }
            };
            let name = program.rsplit('/').next().unwrap_or(&program).to_owned();
            found.insert(name, shown.clone());
        }
    }
    // Stand-ins in the harness's own unit tests, not target programs.
    found.remove("true");
    found
}

#[test]
fn every_program_the_code_runs_comes_from_a_declared_package() {
    let table: BTreeMap<String, (String, String)> = read("ci/program-packages")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "ci/program-packages: bad line {l:?}");
            (cols[0].to_owned(), (cols[1].to_owned(), cols[2].to_owned()))
        })
        .collect();

    let used = programs_run_by_the_code();
    assert!(used.contains_key("login") && used.contains_key("sshd"));
    let unlisted: Vec<String> = used
        .iter()
        .filter(|(p, _)| !table.contains_key(*p))
        .map(|(p, f)| format!("{p} (run in {f})"))
        .collect();
    assert!(
        unlisted.is_empty(),
        "programs run by the code but not in ci/program-packages (add them with their \
         package, and the package to debian/control): {unlisted:?}"
    );

    let fields = binary_package_fields();
    let depends = relation_names(&fields["Depends"]);
    let recommends = relation_names(&fields["Recommends"]);
    let suggests = relation_names(&fields["Suggests"]);
    for (program, (package, how)) in &table {
        match how.as_str() {
            "depends" => assert!(
                depends.contains(package),
                "{program}: {package} missing from Depends"
            ),
            "recommends" => assert!(
                recommends.contains(package) || depends.contains(package),
                "{program}: {package} missing from Recommends"
            ),
            "suggests" => assert!(
                suggests.contains(package),
                "{program}: {package} missing from Suggests"
            ),
            "login" => assert!(depends.contains("${fr1:Login}")),
            "unpackaged" => assert_eq!(package, "-", "{program}: unpackaged, yet a package"),
            "essential" => assert!(
                !depends.contains(package),
                "{program}: {package} is Essential; lintian refuses an unversioned Depends"
            ),
            other => panic!("ci/program-packages: {program}: unknown kind {other:?}"),
        }
    }
}

#[test]
fn debian_copyright_has_a_stanza_for_exactly_the_crates_of_cargo_lock() {
    let copyright = read("debian/copyright");
    let stanzas: BTreeSet<String> = copyright
        .lines()
        .filter_map(|l| l.strip_prefix("Files: vendor/"))
        .map(|f| f.trim_end_matches("/*").to_owned())
        .collect();
    let locked: BTreeSet<String> = registry_crates()
        .into_iter()
        .map(|(n, v, _)| format!("{n}-{v}"))
        .collect();
    let missing: Vec<_> = locked.difference(&stanzas).collect();
    let stale: Vec<_> = stanzas.difference(&locked).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "debian/copyright is out of step with Cargo.lock (regenerate: cargo vendor \
         --versioned-dirs /tmp/v && ci/gen-copyright.py --write /tmp/v): \
         missing {missing:?}, stale {stale:?}"
    );
}

#[test]
fn the_debian_version_is_the_cargo_version() {
    let changelog = read("debian/changelog");
    let first = changelog.lines().next().expect("changelog entry");
    let version = first
        .split(['(', ')'])
        .nth(1)
        .expect("version in the first changelog line");
    let upstream = version.rsplit_once('-').map_or(version, |(u, _)| u);
    let cargo = read("Cargo.toml");
    let workspace_version = cargo
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .expect("workspace version")
        .trim_matches('"');
    assert_eq!(
        upstream, workspace_version,
        "debian/changelog vs Cargo.toml"
    );
    let man = read("doc/cip-iec-fr1-tests.1");
    assert!(
        man.contains(&format!("\"cip-iec-fr1-tests {workspace_version}\"")),
        "the man page's .TH line names another version"
    );
}

#[test]
fn the_man_page_documents_every_option_of_the_usage_text() {
    let cli = read("src/cli.rs");
    let usage = cli
        .split("pub const USAGE: &str = \"")
        .nth(1)
        .and_then(|r| r.split("\";").next())
        .expect("USAGE in src/cli.rs");
    let man = read("doc/cip-iec-fr1-tests.1").replace("\\-", "-");
    let options: BTreeSet<&str> = usage
        .split(|c: char| c.is_whitespace() || c == ',' || c == '/')
        .filter(|w| w.starts_with('-') && w.len() > 1 && !w.starts_with("--="))
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .collect();
    assert!(options.contains("--junit") && options.contains("--list"));
    let man_words: BTreeSet<&str> = man
        .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .collect();
    let undocumented: Vec<_> = options.difference(&man_words).collect();
    assert!(
        undocumented.is_empty(),
        "options of the usage text missing from doc/cip-iec-fr1-tests.1: {undocumented:?}"
    );
}

const ISAR_RECIPE_DIR: &str = "isar-recipe/recipes-security/cip-iec-fr1-tests";

#[test]
fn the_isar_recipe_fetches_exactly_the_crates_of_cargo_lock_with_their_checksums() {
    let inc = read(&format!("{ISAR_RECIPE_DIR}/cip-iec-fr1-tests-crates.inc"));
    // crate://crates.io/NAME/VERSION;name=NAME-VERSION: the checksum's name
    // must be the crate's, or bitbake checks another crate's sum.
    let entries: BTreeSet<String> = inc
        .lines()
        .filter_map(|l| l.trim().strip_prefix("crate://crates.io/"))
        .map(|l| {
            let entry = l.trim_end_matches(['\\', ' ']);
            let (path, name) = entry.split_once(";name=").unwrap_or((entry, ""));
            let crate_ = path.replacen('/', "-", 1);
            assert_eq!(name, crate_, "checksum name of crate://crates.io/{path}");
            crate_
        })
        .collect();
    let sums: BTreeMap<String, String> = inc
        .lines()
        .filter_map(|l| l.strip_prefix("SRC_URI["))
        .filter_map(|l| l.split_once(".sha256sum] = "))
        .map(|(crate_, sum)| (crate_.to_owned(), sum.trim_matches('"').to_owned()))
        .collect();
    let locked: BTreeMap<String, String> = registry_crates()
        .into_iter()
        .map(|(n, v, s)| (format!("{n}-{v}"), s))
        .collect();
    let regenerate = "out of step with Cargo.lock: run ci/gen-isar-crates.sh";
    assert_eq!(
        entries,
        locked.keys().cloned().collect::<BTreeSet<_>>(),
        "crate:// entries {regenerate}"
    );
    assert_eq!(sums, locked, "sha256 checksums {regenerate}");
}

#[test]
fn the_isar_recipe_builds_the_cargo_version() {
    let cargo = read("Cargo.toml");
    let version = cargo
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .expect("workspace version")
        .trim_matches('"');
    let recipe = repo_root()
        .join(ISAR_RECIPE_DIR)
        .join(format!("cip-iec-fr1-tests_{version}.bb"));
    assert!(
        recipe.is_file(),
        "{} missing: rename the recipe after a version change",
        recipe.display()
    );
}
