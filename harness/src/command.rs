//! Running a program and recording it in the evidence.
//!
//! Every system change and every observation a test case makes goes through
//! here, so the evidence shows the exact command line, exit status and output.

use crate::Evidence;
use anyhow::{bail, Context, Result};
use std::process::{Command, Output, Stdio};

/// The result of a recorded command.
#[derive(Debug)]
pub struct Ran {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// stdout and stderr together, for matching messages that a program may
    /// write to either.
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Shell-like rendering of a command line for the evidence.
pub fn command_line(cmd: &Command) -> String {
    let mut parts = vec![quote(&cmd.get_program().to_string_lossy())];
    parts.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    parts.join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Programs that rewrite the account database (/etc/passwd, group, shadow,
/// gshadow). Test cases run in parallel, and concurrent runs of these were
/// seen to lose each other's changes (`adduser` creating a group that its
/// own `useradd` then could not find), so the harness runs them one at a
/// time. An administrator on the device does the same.
const ACCOUNT_TOOLS: &[&str] = &[
    "useradd", "usermod", "userdel", "groupadd", "groupmod", "groupdel", "adduser", "deluser",
    "addgroup", "delgroup", "chpasswd", "chage", "passwd", "gpasswd",
];

static ACCOUNT_DB: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Hold this to change the account database (the harness's account tools
/// and the journal's replay take it).
pub fn account_db_lock() -> std::sync::MutexGuard<'static, ()> {
    ACCOUNT_DB.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run `cmd` (stdin from `input`, if any), record it, and return what it did.
/// Fails only if the program could not be started; a non-zero exit is data.
pub fn run(ev: &Evidence, cmd: &mut Command, input: Option<&str>) -> Result<Ran> {
    let line = command_line(cmd);
    let program = std::path::Path::new(cmd.get_program());
    let account_tool = program
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| ACCOUNT_TOOLS.contains(&n));
    let _serialised = account_tool.then(account_db_lock);
    let output = spawn_and_wait(cmd, input).with_context(|| format!("cannot run `{line}`"))?;
    let ran = Ran {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    ev.command(
        &line,
        &format!("{}", output.status),
        &ran.stdout,
        &ran.stderr,
    );
    Ok(ran)
}

/// Like [`run`], but a non-zero exit is an error that quotes the output.
pub fn run_ok(ev: &Evidence, cmd: &mut Command, input: Option<&str>) -> Result<Ran> {
    let ran = run(ev, cmd, input)?;
    if !ran.success {
        bail!(
            "`{}` failed ({}): {}",
            ev.mask(&command_line(cmd)),
            ran.code
                .map_or_else(|| "killed".to_owned(), |c| format!("exit {c}")),
            ev.mask(ran.all_output().trim())
        );
    }
    Ok(ran)
}

/// Shorthand for `run_ok` of a program and its arguments.
pub fn sh(ev: &Evidence, program: &str, args: &[&str]) -> Result<Ran> {
    run_ok(ev, Command::new(program).args(args), None)
}

fn spawn_and_wait(cmd: &mut Command, input: Option<&str>) -> std::io::Result<Output> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        use std::io::Write;
        stdin.write_all(text.as_bytes())?;
    }
    child.wait_with_output()
}

/// Is `program` installed (found on PATH or the sbin directories root uses)?
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|p| p.is_file());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_quoted_like_a_shell() {
        let mut c = Command::new("su");
        c.args(["-", "fr1-ab", "-c", "echo FR1-$(id -un)-END", "it's"]);
        assert_eq!(
            command_line(&c),
            r"su - fr1-ab -c 'echo FR1-$(id -un)-END' 'it'\''s'"
        );
    }

    #[test]
    fn a_failing_command_is_an_error_with_its_output() {
        let ev = Evidence::new("t");
        let err = run_ok(
            &ev,
            Command::new("sh").args(["-c", "echo nope >&2; exit 3"]),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("exit 3") && err.contains("nope"), "{err}");
    }
}
