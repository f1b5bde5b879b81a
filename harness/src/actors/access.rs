//! What an unprivileged user can do to a file, tried as that user.
//!
//! A file's mode says what should happen; only opening it as the user shows
//! what does (ACLs, capabilities, a group the user happens to be in). The
//! open is a shell redirection run as the user through `setpriv`: reading
//! opens the file read-only, writing opens it for appending, so nothing is
//! ever truncated or written even when the open succeeds.

use crate::runtime::command::{command_line, run};
use crate::{Evidence, TestUser};
use anyhow::{bail, Result};
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    fn redirection(self) -> &'static str {
        match self {
            // `exec 3<FILE`: open(FILE, O_RDONLY).
            Access::Read => "exec 3<\"$1\"",
            // `exec 3>>FILE`: open(FILE, O_WRONLY|O_APPEND|O_CREAT), no
            // truncation, and nothing is written to descriptor 3.
            Access::Write => "exec 3>>\"$1\"",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Access::Read => "reading",
            Access::Write => "writing",
        }
    }
}

/// What the kernel answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Allowed,
    /// EACCES (or EPERM), with the message the shell printed.
    Denied(String),
}

/// Open `path` for `access` as `user`. An answer other than success or
/// "permission denied" (the file is missing, say) is an error: it proves
/// nothing about permissions.
pub fn try_open(ev: &Evidence, user: &TestUser, path: &Path, access: Access) -> Result<Opened> {
    try_open_with(ev, user.command("sh"), path, access)
}

/// Like [`try_open`], for any identity: `shell` is `sh` run as it (e.g.
/// through `setpriv`), to which the open is added as arguments.
pub fn try_open_with(
    ev: &Evidence,
    mut shell: Command,
    path: &Path,
    access: Access,
) -> Result<Opened> {
    shell.args(["-c", access.redirection(), "sh"]).arg(path);
    let line = command_line(&shell);
    let ran = run(ev, &mut shell, None)?;
    let said = ran.all_output();
    if ran.success {
        return Ok(Opened::Allowed);
    }
    if said.contains("Permission denied") || said.contains("Operation not permitted") {
        return Ok(Opened::Denied(said.trim().to_owned()));
    }
    bail!(
        "`{line}` failed for another reason than permissions: {}",
        said.trim()
    )
}
