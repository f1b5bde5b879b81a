//! The PAM configuration as libpam reads it: the lines of one type
//! (`auth`, `account`, `password`, `session`) that a service runs, with
//! `@include`, `include` and `substack` followed into the files they name.
//! Included lines become the including stack's own, as libpam loads them; a
//! substack is kept as libpam keeps it: a line of its own (control
//! `substack`, no module) followed by the substack's lines one
//! [`PamLine::level`] deeper, so that a player of the stack
//! ([`crate::facts::pam_play`]) can count it as one module for a jump and
//! end only the substack on `done` or `die`.
//!
//! Test cases read the image's policy from here ("as configured") instead of
//! assuming the reference configuration: which quality module the password
//! stack runs and with which options, for example.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Where the per-service PAM files live.
pub const PAM_DIR: &str = "/etc/pam.d";

/// Directories libpam loads modules from (Debian multiarch first).
const MODULE_DIRS: [&str; 4] = [
    "/usr/lib/*/security",
    "/lib/*/security",
    "/usr/lib/security",
    "/lib/security",
];

/// Include depth beyond which a configuration is taken to loop.
const MAX_DEPTH: usize = 16;

/// One module line of a stack, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamLine {
    pub file: PathBuf,
    /// 1-based line number in `file`.
    pub number: usize,
    /// The line as written (continuations joined, comment removed).
    pub text: String,
    /// `required`, `requisite`, `[success=1 default=ignore]`, … (the
    /// simple words in lower case: libpam reads them case-insensitively),
    /// or `substack` for the line that opens a substack.
    pub control: String,
    /// The module's file name (`pam_passwdqc.so`), also when the line
    /// names it with a path.
    pub module: String,
    pub args: Vec<String>,
    /// The type was written with a leading `-`: libpam does not log that
    /// the module is not installed (the line still fails, see
    /// `module_missing`).
    pub skip_if_missing: bool,
    /// The module's file is in none of the places libpam loads modules
    /// from: libpam dispatches the line as failed (PAM_MODULE_UNKNOWN), a
    /// `-` line too. Only judged for the system's own PAM files.
    pub module_missing: bool,
    /// 0 for the service's own stack (includes expanded), one more inside
    /// each substack.
    pub level: usize,
}

impl PamLine {
    /// The line that opens a substack (its lines follow, one level deeper).
    pub fn is_substack(&self) -> bool {
        self.control == "substack"
    }

    /// `file:line: text`, for the evidence.
    pub fn location(&self) -> String {
        format!("{}:{}: {}", self.file.display(), self.number, self.text)
    }

    /// The value of a `key=value` argument (the last one, as modules that
    /// parse their arguments in order end up with), or `Some("")` for a
    /// bare flag `key`.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .rev()
            .find_map(|a| match a.split_once('=') {
                Some((k, v)) if k == key => Some(v),
                None if a == key => Some(""),
                _ => None,
            })
    }
}

/// The `kind` lines (`"password"`, …) that PAM service `service` runs, in
/// order, includes expanded. A service without its own file uses `other`,
/// as libpam does.
pub fn stack(service: &str, kind: &str) -> Result<Vec<PamLine>> {
    stack_in(Path::new(PAM_DIR), service, kind)
}

/// [`stack`] with the PAM files in `dir`.
pub fn stack_in(dir: &Path, service: &str, kind: &str) -> Result<Vec<PamLine>> {
    let mut file = dir.join(service);
    if !file.exists() {
        file = dir.join("other");
    }
    let mut lines = Vec::new();
    expand(dir, &file, kind, 0, 0, &mut lines)?;
    // Where modules are installed is known for the system's PAM files
    // only; files elsewhere (a test's) are taken as fully installed.
    if dir == Path::new(PAM_DIR) {
        let dirs = module_dirs();
        for line in lines.iter_mut().filter(|l| !l.is_substack()) {
            line.module_missing = !module_installed(line, &dirs);
        }
    }
    Ok(lines)
}

/// The directories libpam may load modules from: the multiarch ones of
/// every architecture, and the plain ones. (Broader than the one libpam
/// was built with, so a module is never taken for missing when it is not.)
fn module_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for base in ["/lib", "/usr/lib", "/lib64", "/usr/lib64"] {
        dirs.push(Path::new(base).join("security"));
        if let Ok(entries) = std::fs::read_dir(base) {
            dirs.extend(
                entries
                    .flatten()
                    .map(|e| e.path().join("security"))
                    .filter(|d| d.is_dir()),
            );
        }
    }
    dirs
}

/// Is the line's module installed? A path as written is looked up as it
/// is (a relative one is not judged: taken as installed), a bare name in
/// `dirs`.
fn module_installed(line: &PamLine, dirs: &[PathBuf]) -> bool {
    let words = split_words(&line.text);
    let Some(written) = words.get(2) else {
        return true;
    };
    if written.starts_with('/') {
        return Path::new(written).exists();
    }
    if written.contains('/') {
        return true;
    }
    dirs.iter().any(|d| d.join(written).exists())
}

fn expand(
    dir: &Path,
    file: &Path,
    kind: &str,
    depth: usize,
    level: usize,
    out: &mut Vec<PamLine>,
) -> Result<()> {
    if depth > MAX_DEPTH {
        bail!(
            "PAM includes nest deeper than {MAX_DEPTH} levels at {}",
            file.display()
        );
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    for (number, line) in logical_lines(&text) {
        let words = split_words(&line);
        let Some(first) = words.first() else { continue };
        if first == "@include" {
            let target = words
                .get(1)
                .with_context(|| format!("{}:{number}: @include without a file", file.display()))?;
            expand(dir, &dir.join(target), kind, depth + 1, level, out)?;
            continue;
        }
        let (skip_if_missing, line_kind) = match first.strip_prefix('-') {
            Some(k) => (true, k),
            None => (false, first.as_str()),
        };
        if !line_kind.eq_ignore_ascii_case(kind) || words.len() < 3 {
            continue;
        }
        let control = if words[1].starts_with('[') {
            words[1].clone()
        } else {
            words[1].to_ascii_lowercase()
        };
        if control == "include" {
            expand(dir, &dir.join(&words[2]), kind, depth + 1, level, out)?;
            continue;
        }
        if control == "substack" {
            out.push(PamLine {
                file: file.to_path_buf(),
                number,
                text: line.clone(),
                control,
                module: String::new(),
                args: words[2..].to_vec(),
                skip_if_missing,
                module_missing: false,
                level,
            });
            expand(dir, &dir.join(&words[2]), kind, depth + 1, level + 1, out)?;
            continue;
        }
        let module = Path::new(&words[2])
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| words[2].clone());
        out.push(PamLine {
            file: file.to_path_buf(),
            number,
            text: line.clone(),
            control,
            module,
            args: words[3..].to_vec(),
            skip_if_missing,
            module_missing: false,
            level,
        });
    }
    Ok(())
}

/// Lines with their first line number: backslash continuations joined,
/// comments and blank lines dropped.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        if let Some(cont) = raw.strip_suffix('\\') {
            acc.push_str(cont);
            acc.push(' ');
            pending = Some((start, acc));
            continue;
        }
        acc.push_str(raw);
        let content = acc.split('#').next().unwrap_or("").trim().to_owned();
        if !content.is_empty() {
            out.push((start, content));
        }
    }
    if let Some((start, acc)) = pending {
        let content = acc.split('#').next().unwrap_or("").trim().to_owned();
        if !content.is_empty() {
            out.push((start, content));
        }
    }
    out
}

/// Whitespace-separated words, where `[ … ]` (a control or an argument
/// with spaces) is one word, brackets kept.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in line.chars() {
        match c {
            '[' => {
                depth += 1;
                current.push(c);
            }
            ']' if depth > 0 => {
                depth -= 1;
                current.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Where the module file `name` (`pam_passwdqc.so`) is installed, if it is.
pub fn module_path(name: &str) -> Option<PathBuf> {
    MODULE_DIRS
        .iter()
        .find_map(|pattern| match pattern.split_once('*') {
            Some((head, tail)) => std::fs::read_dir(head)
                .ok()?
                .filter_map(|e| e.ok())
                .map(|e| e.path().join(tail.trim_start_matches('/')).join(name))
                .find(|p| p.is_file()),
            None => Some(Path::new(pattern).join(name)).filter(|p| p.is_file()),
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    /// CIP's common-auth: faillock around pam_unix, then the second factor.
    pub(crate) const CIP_COMMON_AUTH: &str = "\
auth required pam_faillock.so preauth silent deny=3
auth [success=2 default=ignore] pam_unix.so nullok
auth [default=die] pam_faillock.so authfail deny=3
auth requisite pam_deny.so
auth required pam_permit.so
auth required pam_google_authenticator.so nullok
";

    /// The auth stack of the first of `files` (name, text), all written to
    /// a PAM directory of their own: for the players' tests.
    pub(crate) fn auth_stack_of(files: &[(&str, &str)]) -> Vec<PamLine> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            write(dir.path(), name, text);
        }
        stack_in(dir.path(), files[0].0, "auth").unwrap()
    }

    #[test]
    fn includes_are_followed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "passwd",
            "#%PAM-1.0\n\n@include common-password\npassword optional pam_gnome_keyring.so\n",
        );
        write(
            dir.path(),
            "common-password",
            "# comment\npassword\trequisite\t\t\tpam_passwdqc.so min=disabled,disabled,disabled,disabled,8 \\\n  enforce=everyone # trailing\n\
             password [success=1 default=ignore] /lib/x86_64-linux-gnu/security/pam_unix.so obscure use_authtok\n\
             -password optional pam_extra.so\npassword include common-extra\nauth required pam_deny.so\n",
        );
        write(
            dir.path(),
            "common-extra",
            "Password required pam_permit.so\n",
        );
        let s = stack_in(dir.path(), "passwd", "password").unwrap();
        let modules: Vec<&str> = s.iter().map(|l| l.module.as_str()).collect();
        assert_eq!(
            modules,
            [
                "pam_passwdqc.so",
                "pam_unix.so",
                "pam_extra.so",
                "pam_permit.so",
                "pam_gnome_keyring.so"
            ]
        );
        assert_eq!(s[0].number, 2);
        assert_eq!(s[0].arg("enforce"), Some("everyone"));
        assert_eq!(
            s[0].arg("min"),
            Some("disabled,disabled,disabled,disabled,8")
        );
        assert_eq!(s[1].control, "[success=1 default=ignore]");
        assert_eq!(s[1].arg("obscure"), Some(""));
        assert!(s[2].skip_if_missing && !s[1].skip_if_missing);
        assert_eq!(s[4].file, dir.path().join("passwd"));
    }

    #[test]
    fn a_service_without_a_file_uses_other_and_loops_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "other", "password required pam_deny.so\n");
        let s = stack_in(dir.path(), "nosuch", "password").unwrap();
        assert_eq!(s[0].module, "pam_deny.so");
        write(dir.path(), "a", "@include b\n");
        write(dir.path(), "b", "@include a\n");
        assert!(stack_in(dir.path(), "a", "password").is_err());
    }
}
