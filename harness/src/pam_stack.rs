//! Reading a service's PAM stack as PAM itself assembles it.
//!
//! `/etc/pam.d/su` on Debian is mostly `@include common-auth` and friends,
//! so "is pam_faillock in su's auth stack, with which options" needs the
//! includes followed: `@include FILE`, and the `include` / `substack`
//! controls. Only reading; the harness never edits a PAM file through here.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Where the service files live.
pub const PAM_DIR: &str = "/etc/pam.d";
/// Includes nested deeper than this are a loop (Linux-PAM stops at a
/// similar depth).
const MAX_DEPTH: usize = 16;

/// One module line of a stack, after includes were followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The file the line is written in (e.g. /etc/pam.d/common-auth).
    pub file: PathBuf,
    /// `auth`, `account`, `password` or `session` (without a leading `-`).
    pub kind: String,
    /// `required`, `[success=1 default=ignore]`, …
    pub control: String,
    /// The module as written (`pam_unix.so` or a full path).
    pub module: String,
    pub args: Vec<String>,
}

impl Line {
    /// The module's file name: `pam_faillock.so` also for a full path.
    pub fn module_name(&self) -> &str {
        self.module.rsplit('/').next().unwrap_or(&self.module)
    }

    /// The value of `key=value` among the arguments (the last one wins, as
    /// in the modules' own parsers).
    pub fn arg_value(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .filter_map(|a| a.strip_prefix(key)?.strip_prefix('='))
            .next_back()
    }

    /// Is the bare flag `name` among the arguments?
    pub fn has_flag(&self, name: &str) -> bool {
        self.args.iter().any(|a| a == name)
    }

    /// The line as it would be written, for the evidence.
    pub fn render(&self) -> String {
        let mut s = format!("{} {} {}", self.kind, self.control, self.module);
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        format!("{s}  ({})", self.file.display())
    }
}

/// The `kind` lines (`"auth"`, `"account"`, …) of `service`'s stack, in
/// order, includes followed. A missing service file means PAM uses `other`.
pub fn stack(service: &str, kind: &str) -> Result<Vec<Line>> {
    stack_in(Path::new(PAM_DIR), service, kind)
}

/// Every line of `service`'s `kind` stack that loads `module` (a file name
/// such as `pam_faillock.so`).
pub fn lines_with(service: &str, kind: &str, module: &str) -> Result<Vec<Line>> {
    Ok(stack(service, kind)?
        .into_iter()
        .filter(|l| l.module_name() == module)
        .collect())
}

fn stack_in(dir: &Path, service: &str, kind: &str) -> Result<Vec<Line>> {
    let mut file = dir.join(service);
    if !file.exists() {
        file = dir.join("other");
    }
    let mut out = Vec::new();
    read_file(dir, &file, kind, 0, &mut out)?;
    Ok(out)
}

fn read_file(dir: &Path, file: &Path, kind: &str, depth: usize, out: &mut Vec<Line>) -> Result<()> {
    if depth > MAX_DEPTH {
        bail!(
            "PAM includes nested deeper than {MAX_DEPTH} at {}",
            file.display()
        );
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    for raw in logical_lines(&text) {
        let words = split_words(&raw);
        let Some(first) = words.first() else { continue };
        if first == "@include" {
            if let Some(target) = words.get(1) {
                read_file(dir, &resolve(dir, target), kind, depth + 1, out)?;
            }
            continue;
        }
        let this_kind = first.trim_start_matches('-');
        if this_kind != kind || words.len() < 3 {
            continue;
        }
        let control = words[1].clone();
        if control == "include" || control == "substack" {
            read_file(dir, &resolve(dir, &words[2]), kind, depth + 1, out)?;
            continue;
        }
        out.push(Line {
            file: file.to_path_buf(),
            kind: this_kind.to_owned(),
            control,
            module: words[2].clone(),
            args: words[3..].to_vec(),
        });
    }
    Ok(())
}

fn resolve(dir: &Path, target: &str) -> PathBuf {
    if target.starts_with('/') {
        PathBuf::from(target)
    } else {
        dir.join(target)
    }
}

/// Lines without comments, with `\`-continued lines joined.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        if !current.trim().is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        current.clear();
    }
    if !current.trim().is_empty() {
        lines.push(current);
    }
    lines
}

/// Words of a line; a `[...]` control (which may contain spaces) and a
/// `[...]` argument stay one word, without the brackets for arguments.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '[' {
            let bracketed_control = words.len() == 1;
            chars.next();
            if bracketed_control {
                word.push('[');
            }
            for c in chars.by_ref() {
                if c == ']' {
                    break;
                }
                word.push(c);
            }
            if bracketed_control {
                word = format!(
                    "[{}]",
                    word[1..].split_whitespace().collect::<Vec<_>>().join(" ")
                );
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn includes_are_followed_in_order() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "su",
            "auth sufficient pam_rootok.so\n@include common-auth\nsession required pam_env.so\n",
        );
        write(
            d.path(),
            "common-auth",
            "# comment\nauth required pam_faillock.so preauth silent deny=3 \\\n  unlock_time=60\n\
             auth [success=2 default=ignore]\tpam_unix.so nullok\n\
             auth [default=die] /lib/x86_64-linux-gnu/security/pam_faillock.so authfail deny=4\n\
             -auth optional pam_systemd_home.so\nauth substack extra\n",
        );
        write(
            d.path(),
            "extra",
            "auth required pam_google_authenticator.so nullok\n",
        );
        let lines = stack_in(d.path(), "su", "auth").unwrap();
        let modules: Vec<&str> = lines.iter().map(Line::module_name).collect();
        assert_eq!(
            modules,
            [
                "pam_rootok.so",
                "pam_faillock.so",
                "pam_unix.so",
                "pam_faillock.so",
                "pam_systemd_home.so",
                "pam_google_authenticator.so"
            ]
        );
        assert_eq!(lines[1].arg_value("unlock_time"), Some("60"));
        assert!(lines[1].has_flag("silent"));
        assert_eq!(lines[2].control, "[success=2 default=ignore]");
        assert_eq!(lines[3].arg_value("deny"), Some("4"));
        assert!(lines[3].file.ends_with("common-auth"));
    }

    #[test]
    fn a_missing_service_falls_back_to_other_and_loops_are_refused() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "other", "auth required pam_deny.so\n");
        let lines = stack_in(d.path(), "nosuch", "auth").unwrap();
        assert_eq!(lines[0].module_name(), "pam_deny.so");
        write(d.path(), "loop", "@include loop\n");
        assert!(stack_in(d.path(), "loop", "auth").is_err());
    }

    #[test]
    fn bracketed_arguments_stay_one_word() {
        let w = split_words("auth [success=ok  default=bad] pam_x.so [a b] c");
        assert_eq!(
            w,
            ["auth", "[success=ok default=bad]", "pam_x.so", "a b", "c"]
        );
    }
}
