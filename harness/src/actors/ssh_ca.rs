//! SSH keys and an SSH user CA, made with the target's own `ssh-keygen`.
//!
//! - [`SshCa`]: a per-run user CA (Ed25519) in a private temporary directory
//!   (mode 0700, removed with everything in it on drop): client key pairs
//!   ([`SshCa::key`]), user certificates with principals and a validity
//!   window ([`SshCa::certify`]), and a key revocation list for sshd's
//!   `RevokedKeys` ([`SshCa::revocation_list`]). The CA's public key is
//!   what a private sshd trusts with `TrustedUserCAKeys`.
//! - [`PrincipalsLookup`] and [`PrincipalGrants`]: where sshd looks up the
//!   principals that may log in as an account (`AuthorizedPrincipalsFile`,
//!   `AuthorizedPrincipalsCommand`), read from the system's configuration,
//!   and granting a principal to a test account in exactly that place, so
//!   an image-level mapping is what a test exercises.
//!
//! Every `ssh-keygen` operation is timed into the case's [`Timings`].

use crate::actors::pki::{Timings, Validity};
use crate::actors::private_dir::PrivateDir;
use crate::actors::sshd_match::SSHD;
use crate::runtime::case::skip;
use crate::runtime::command::{find_program, run, run_ok, Ran};
use crate::{Evidence, FileGuard, TestUser};
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A client key pair (root-owned, 0600, in the CA's private directory).
#[derive(Debug, Clone)]
pub struct SshKey {
    pub name: String,
    pub private: PathBuf,
    pub public: PathBuf,
}

impl SshKey {
    /// The `type base64 comment` line, for an `authorized_keys` file.
    pub fn public_line(&self) -> Result<String> {
        let line = fs::read_to_string(&self.public)
            .with_context(|| format!("reading {}", self.public.display()))?;
        Ok(line.trim().to_owned())
    }
}

pub struct SshCa {
    path: PathBuf,
    ca_key: PathBuf,
    ca_public: PathBuf,
    serial: AtomicU64,
    timings: Timings,
    ev: Evidence,
    _dir: PrivateDir,
}

impl SshCa {
    /// A fresh Ed25519 user CA. Skips the case when ssh-keygen is missing.
    pub fn new(ev: &Evidence, timings: &Timings) -> Result<Self> {
        if find_program("ssh-keygen").is_none() {
            return skip("ssh-keygen is not installed (package openssh-client)");
        }
        let dir = PrivateDir::create(ev, "fr1-sshca-", "SSH CA key, client keys, certificates")?;
        let path = dir.path().to_path_buf();
        ev.step(format!(
            "per-run SSH user CA in {} (mode 0700)",
            path.display()
        ));
        let ca = SshCa {
            ca_key: path.join("user_ca"),
            ca_public: path.join("user_ca.pub"),
            _dir: dir,
            path,
            serial: AtomicU64::new(1),
            timings: timings.clone(),
            ev: ev.clone(),
        };
        ca.keygen(
            "generate SSH user CA key (Ed25519)",
            &ca.ca_key,
            "fr1-user-ca",
        )?;
        Ok(ca)
    }

    /// The CA's public key file, for `TrustedUserCAKeys`.
    pub fn public_key(&self) -> &Path {
        &self.ca_public
    }

    /// The private directory (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// A new Ed25519 client key pair `<name>` / `<name>.pub`.
    pub fn key(&self, name: &str) -> Result<SshKey> {
        let private = self.path.join(name);
        self.keygen(
            &format!("generate SSH key {name} (Ed25519)"),
            &private,
            name,
        )?;
        Ok(SshKey {
            name: name.to_owned(),
            public: private.with_extension("pub"),
            private,
        })
    }

    fn keygen(&self, what: &str, private: &Path, comment: &str) -> Result<()> {
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(private);
        self.timed_ok(what, &mut cmd)?;
        Ok(())
    }

    fn timed_ok(&self, what: &str, cmd: &mut Command) -> Result<Ran> {
        let started = Instant::now();
        let ran = run_ok(&self.ev, cmd, None);
        self.timings.record(what, started.elapsed());
        ran.with_context(|| what.to_owned())
    }

    /// A user certificate for `key`: key ID `identity`, the given
    /// principals, valid per `validity` (relative to the target's clock),
    /// written as `<label>-cert.pub`. Its details (`ssh-keygen -L`) go into
    /// the evidence.
    pub fn certify(
        &self,
        key: &SshKey,
        label: &str,
        identity: &str,
        principals: &[&str],
        validity: Validity,
    ) -> Result<PathBuf> {
        let window = match validity {
            Validity::Current => "-5m:+1h",
            Validity::Expired => "-2d:-1d",
            Validity::NotYetValid => "+1d:+2d",
        };
        let serial = self.serial.fetch_add(1, Ordering::Relaxed).to_string();
        let mut cmd = Command::new("ssh-keygen");
        cmd.arg("-s")
            .arg(&self.ca_key)
            .args([
                "-I",
                identity,
                "-n",
                &principals.join(","),
                "-V",
                window,
                "-z",
                &serial,
            ])
            .arg(&key.public);
        self.timed_ok(
            &format!("sign SSH user certificate {label} ({validity})"),
            &mut cmd,
        )?;
        // ssh-keygen always writes <key>-cert.pub; keep each certificate
        // under its own name so several can exist for one key.
        let written = self.path.join(format!("{}-cert.pub", key.name));
        let cert = self.path.join(format!("{label}-cert.pub"));
        fs::rename(&written, &cert)
            .with_context(|| format!("renaming {} to {}", written.display(), cert.display()))?;
        run_ok(
            &self.ev,
            Command::new("ssh-keygen").arg("-L").arg("-f").arg(&cert),
            None,
        )?;
        Ok(cert)
    }

    /// A key revocation list (KRL) revoking `keys`, for sshd's
    /// `RevokedKeys`. `ssh-keygen -Q` must report each of them as revoked,
    /// and `still_valid` as not revoked, or the list is not what the test
    /// thinks it is.
    pub fn revocation_list(&self, keys: &[&SshKey], still_valid: &SshKey) -> Result<PathBuf> {
        let krl = self.path.join("revoked_keys.krl");
        let mut cmd = Command::new("ssh-keygen");
        cmd.arg("-k").arg("-f").arg(&krl);
        for k in keys {
            cmd.arg(&k.public);
        }
        self.timed_ok("generate SSH key revocation list", &mut cmd)?;
        for k in keys {
            let q = run(
                &self.ev,
                Command::new("ssh-keygen")
                    .arg("-Q")
                    .arg("-f")
                    .arg(&krl)
                    .arg(&k.public),
                None,
            )?;
            if !q.all_output().contains("REVOKED") {
                bail!("the KRL does not list {} as revoked", k.name);
            }
        }
        let q = run_ok(
            &self.ev,
            Command::new("ssh-keygen")
                .arg("-Q")
                .arg("-f")
                .arg(&krl)
                .arg(&still_valid.public),
            None,
        )?;
        if q.all_output().contains("REVOKED") {
            bail!("the KRL revokes {} as well", still_valid.name);
        }
        Ok(krl)
    }
}

/// Where sshd takes the principals allowed to log in as an account with a
/// user certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalsLookup {
    /// Neither setting: sshd accepts a certificate whose principals
    /// include the account name.
    AccountName,
    /// `AuthorizedPrincipalsFile` (with its `%` tokens, as configured).
    File(String),
    /// `AuthorizedPrincipalsCommand`, with the account it runs as.
    Command(crate::actors::principals_command::PrincipalsCommand),
}

/// The principals lookup of the system's sshd configuration (`sshd -T`,
/// read-only, evaluated for a connection of `user` from 127.0.0.1, so that
/// `Match` blocks apply as they would).
pub fn system_principals_lookup(ev: &Evidence, user: &str) -> Result<PrincipalsLookup> {
    // The private sshd the certificates are tried on listens on loopback.
    let spec = crate::actors::sshd_match::ConnectionSpec {
        user: user.to_owned(),
        host: "localhost".to_owned(),
        addr: "127.0.0.1".to_owned(),
        laddr: "127.0.0.1".to_owned(),
        ..crate::actors::sshd_match::ConnectionSpec::plain()?
    };
    let t = run_ok(ev, Command::new(SSHD).args(["-T", "-C", &spec.arg()]), None)
        .context("reading the system's sshd configuration (sshd -T)")?;
    Ok(principals_lookup_of(&t.stdout))
}

fn principals_lookup_of(effective: &str) -> PrincipalsLookup {
    if let Some(cmd) = crate::actors::principals_command::PrincipalsCommand::of_effective(effective)
    {
        PrincipalsLookup::Command(cmd)
    } else if let Some(file) =
        crate::actors::sshd_match::setting(effective, "authorizedprincipalsfile")
    {
        PrincipalsLookup::File(file)
    } else {
        PrincipalsLookup::AccountName
    }
}

/// `AuthorizedPrincipalsFile` as sshd expands it for `user`: `%%`, `%h`
/// (home), `%U` (uid), `%u` (name); a relative path is relative to the home
/// directory.
pub fn expand_principals_path(template: &str, user: &TestUser) -> PathBuf {
    let out = crate::actors::principals_command::expand_tokens(template, |token| match token {
        'h' => Some(user.home().to_string_lossy().into_owned()),
        'U' => Some(user.uid().to_string()),
        'u' => Some(user.name().to_owned()),
        _ => None,
    });
    let path = PathBuf::from(out);
    if path.is_relative() {
        user.home().join(path)
    } else {
        path
    }
}

/// Principals granted to test accounts in the file sshd reads for them. A
/// file in the account's home is the account's own (removed with it); a
/// file elsewhere is a system file, appended to under a [`FileGuard`] that
/// restores it when the grants are dropped.
pub struct PrincipalGrants {
    guards: Vec<FileGuard>,
    ev: Evidence,
}

impl PrincipalGrants {
    pub fn new(ev: &Evidence) -> Self {
        PrincipalGrants {
            guards: Vec::new(),
            ev: ev.clone(),
        }
    }

    /// Let `principal` log in as `user`, per the `AuthorizedPrincipalsFile`
    /// `template`. Returns the file written.
    pub fn grant(&mut self, template: &str, user: &TestUser, principal: &str) -> Result<PathBuf> {
        let path = expand_principals_path(template, user);
        if let Ok(relative) = path.strip_prefix(user.home()) {
            let relative = relative
                .to_str()
                .context("the principals path is not valid UTF-8")?;
            let existing = fs::read_to_string(&path).unwrap_or_default();
            return user.write_home_file(relative, &format!("{existing}{principal}\n"), 0o600);
        }
        if !self.guards.iter().any(|g| g.path() == path) {
            self.guards.push(FileGuard::new(&self.ev, &path)?);
        }
        let existed = path.exists();
        let mut file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(file, "{principal}").with_context(|| format!("writing {}", path.display()))?;
        if !existed {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        }
        self.ev.note(format!(
            "granted principal {principal} to {} in {} (outside the home directory: a system file, restored afterwards)",
            user.name(),
            path.display()
        ));
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_principals_lookup_is_read_from_sshd_t() {
        let none = "authorizedprincipalsfile none\nauthorizedprincipalscommand none\n";
        assert_eq!(principals_lookup_of(none), PrincipalsLookup::AccountName);
        let file =
            "authorizedprincipalsfile /etc/ssh/all-principals\nauthorizedprincipalscommand none\n";
        assert_eq!(
            principals_lookup_of(file),
            PrincipalsLookup::File("/etc/ssh/all-principals".into())
        );
        let cmd = "authorizedprincipalsfile none\nauthorizedprincipalscommand /usr/bin/x %u\n";
        assert!(matches!(
            principals_lookup_of(cmd),
            PrincipalsLookup::Command(c) if c.command == "/usr/bin/x %u"
        ));
    }
}
