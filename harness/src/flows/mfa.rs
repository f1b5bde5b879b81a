//! The second factor the CIP image ships: pam_google_authenticator (TOTP).
//!
//! - [`module_path`]: is the module installed;
//! - [`stack_lines`]: where a service's auth stack loads it;
//! - [`enrol`]: give a test user a TOTP secret, the way
//!   `google-authenticator` would write `~/.google_authenticator`.
//!
//! The codes themselves come from [`crate::flows::totp`].

use crate::facts::pam::{self, PamLine};
use crate::flows::totp;
use crate::runtime::password::random_bytes;
use crate::{Evidence, TestUser};
use anyhow::{Context, Result};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const MODULE: &str = "pam_google_authenticator.so";
/// Where the module expects the user's secret (its default `secret=`).
pub const SECRET_FILE: &str = ".google_authenticator";
/// Codes accepted around the current one: the previous, the current and
/// the next step. The module's default; stated so the suite knows it.
pub const WINDOW_SIZE: u64 = 3;

/// The installed module, if any.
pub fn module_path() -> Option<PathBuf> {
    pam::module_path(MODULE)
}

/// The lines of `service`'s auth stack that load the module.
pub fn stack_lines(service: &str) -> Result<Vec<PamLine>> {
    Ok(pam::stack(service, "auth")?
        .into_iter()
        .filter(|l| l.module == MODULE)
        .collect())
}

/// A test user's TOTP secret.
pub struct Enrolment {
    secret: Vec<u8>,
    pub file: PathBuf,
}

impl Enrolment {
    /// The code for the current step (what the user's app shows now).
    pub fn current_code(&self) -> String {
        totp::code(&self.secret, totp::current_step())
    }

    /// The code for `step`.
    pub fn code_at(&self, step: u64) -> String {
        totp::code(&self.secret, step)
    }

    /// A right code the module has not seen used: a step of the window
    /// around now (the current one, else the next) that the
    /// `DISALLOW_REUSE` line of the user's file does not list. With both
    /// spent, waits for the next step to begin. Every code a flow gets in
    /// with, or that the module checked before refusing something else, is
    /// spent; reading the file instead of counting keeps that true whatever
    /// order the image's stack asks in.
    pub fn unspent_code(&self, ev: &Evidence) -> Result<String> {
        loop {
            let text = std::fs::read_to_string(&self.file)
                .with_context(|| format!("reading {}", self.file.display()))?;
            let spent = spent_steps(&text);
            let now = totp::current_step();
            if let Some(step) = [now, now + 1].into_iter().find(|s| !spent.contains(s)) {
                return Ok(self.code_at(step));
            }
            let next =
                std::time::UNIX_EPOCH + std::time::Duration::from_secs((now + 1) * totp::STEP_SECS);
            crate::runtime::case::wait_idle_until(
                ev,
                "the codes of this step and the next are spent",
                next,
            );
        }
    }

    /// A code the module must refuse: valid for no step of the window
    /// around now (and the step after, in case the clock moves on).
    pub fn wrong_code(&self) -> String {
        let now = totp::current_step();
        totp::wrong_code(
            &self.secret,
            now.saturating_sub(WINDOW_SIZE)..=now + WINDOW_SIZE,
        )
    }
}

/// Write `~/.google_authenticator` for `user`: a fresh 160-bit secret and
/// the options `google-authenticator -t -d -w 3` would write (TOTP,
/// codes cannot be reused, window of 3). Owned by the user, mode 0400, as
/// the module requires. The file goes with the user's home.
pub fn enrol(ev: &Evidence, user: &TestUser) -> Result<Enrolment> {
    let secret = random_bytes(20)?;
    let encoded = totp::base32(&secret);
    ev.secret(&encoded);
    let file = user.home().join(SECRET_FILE);
    let content = secret_file(&encoded);
    write_owned(&file, &content, user)?;
    ev.note(format!(
        "enrolled {} for TOTP: {} (mode 0400, owner {}) with a random 160-bit secret and the options {}",
        user.name(),
        file.display(),
        user.name(),
        content
            .lines()
            .filter(|l| l.starts_with('"'))
            .map(|l| l.trim_start_matches("\" "))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(Enrolment { secret, file })
}

/// The steps listed on the `" DISALLOW_REUSE` line (the module appends
/// each step whose code was used).
fn spent_steps(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("\" DISALLOW_REUSE"))
        .flat_map(|rest| rest.split_whitespace().filter_map(|w| w.parse().ok()))
        .collect()
}

/// The file format of google-authenticator(1): the base32 secret on the
/// first line, then `" OPTION` lines (no emergency scratch codes: every
/// login of the test must use a computed code).
fn secret_file(encoded: &str) -> String {
    format!("{encoded}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n\" WINDOW_SIZE {WINDOW_SIZE}\n")
}

fn write_owned(path: &Path, content: &str, user: &TestUser) -> Result<()> {
    // create_new + O_NOFOLLOW: never write through something already there.
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(content.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    std::os::unix::fs::fchown(&f, Some(user.uid().as_raw()), Some(user.gid().as_raw()))
        .with_context(|| format!("chown {}", path.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o400))
        .with_context(|| format!("chmod 0400 {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_file_has_the_module_format() {
        let text = secret_file("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"));
        assert!(lines.all(|l| l.starts_with("\" ")));
        assert!(text.contains("\" TOTP_AUTH\n"));
        assert!(text.contains("\" WINDOW_SIZE 3\n"));
        assert!(spent_steps(&text).is_empty());
        let used = text.replace("DISALLOW_REUSE\n", "DISALLOW_REUSE 59000001 59000002\n");
        assert_eq!(spent_steps(&used), vec![59000001, 59000002]);
    }
}
