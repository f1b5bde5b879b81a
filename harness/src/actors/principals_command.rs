//! sshd's `AuthorizedPrincipalsCommand`, run the way sshd runs it: as
//! `AuthorizedPrincipalsCommandUser`, the command line split on spaces,
//! its `%` tokens expanded for an account and a certificate. What it prints
//! are the principals that open that account; a principal printed for two
//! accounts lets one certificate log in as both.

use crate::actors::sshd_match::setting;
use crate::runtime::command::{run_ok, Groups, Setpriv};
use crate::Evidence;
use anyhow::{bail, Context, Result};
use nix::unistd::User;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The command and the account sshd runs it as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalsCommand {
    pub command: String,
    pub user: String,
}

/// What sshd knows about the certificate it asks about, for the tokens.
#[derive(Debug, Clone, Default)]
pub struct CertTokens {
    /// `%f`: the certificate key's fingerprint (SHA256:…).
    pub fingerprint: String,
    /// `%F`: the CA key's fingerprint.
    pub ca_fingerprint: String,
    /// `%i`: the key ID.
    pub key_id: String,
    /// `%k`: the certificate, base64.
    pub cert_base64: String,
    /// `%t`: its type (ssh-ed25519-cert-v01@openssh.com, …).
    pub cert_type: String,
    /// `%K`: the CA key, base64.
    pub ca_base64: String,
    /// `%T`: the CA key's type.
    pub ca_type: String,
    /// `%s`: the serial number.
    pub serial: String,
}

impl CertTokens {
    /// Read from the certificate file and the CA's public key file.
    pub fn read(ev: &Evidence, cert: &Path, ca_public: &Path) -> Result<Self> {
        let fields = |path: &Path| -> Result<(String, String)> {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut words = text.split_whitespace();
            match (words.next(), words.next()) {
                (Some(t), Some(b)) => Ok((t.to_owned(), b.to_owned())),
                _ => bail!("{} is not an OpenSSH public key line", path.display()),
            }
        };
        let fingerprint = |path: &Path| -> Result<String> {
            let out = run_ok(ev, Command::new("ssh-keygen").arg("-lf").arg(path), None)?;
            out.stdout
                .split_whitespace()
                .nth(1)
                .map(str::to_owned)
                .with_context(|| format!("no fingerprint of {}", path.display()))
        };
        let details = run_ok(ev, Command::new("ssh-keygen").arg("-Lf").arg(cert), None)?;
        let detail = |key: &str| {
            details
                .stdout
                .lines()
                .find_map(|l| l.trim().strip_prefix(key))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let (cert_type, cert_base64) = fields(cert)?;
        let (ca_type, ca_base64) = fields(ca_public)?;
        Ok(CertTokens {
            fingerprint: fingerprint(cert)?,
            ca_fingerprint: fingerprint(ca_public)?,
            key_id: detail("Key ID:").trim_matches('"').to_owned(),
            cert_base64,
            cert_type,
            ca_base64,
            ca_type,
            serial: detail("Serial:"),
        })
    }
}

impl PrincipalsCommand {
    /// The command of an effective sshd configuration (`sshd -T` output),
    /// if it sets one.
    pub fn of_effective(effective: &str) -> Option<Self> {
        Some(PrincipalsCommand {
            command: setting(effective, "authorizedprincipalscommand")?,
            user: setting(effective, "authorizedprincipalscommanduser").unwrap_or_default(),
        })
    }

    /// The principals the command prints for `account` asked about the
    /// certificate `cert`.
    pub fn principals_for(
        &self,
        ev: &Evidence,
        account: &User,
        cert: &CertTokens,
    ) -> Result<Vec<String>> {
        // sshd refuses to run the command as root unless told to; without
        // a user it does not run it at all.
        if self.user.is_empty() {
            bail!("AuthorizedPrincipalsCommand is set without AuthorizedPrincipalsCommandUser: sshd does not run it");
        }
        let runner = User::from_name(&self.user)?.with_context(|| {
            format!(
                "AuthorizedPrincipalsCommandUser {} does not exist",
                self.user
            )
        })?;
        let argv: Vec<String> = self
            .command
            .split_whitespace()
            .map(|w| expand(w, account, cert))
            .collect();
        let Some((program, args)) = argv.split_first() else {
            bail!("AuthorizedPrincipalsCommand is empty");
        };
        let mut cmd = Setpriv::new(runner.uid.as_raw(), runner.gid.as_raw(), Groups::OfAccount)
            .command(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
            .current_dir("/");
        let out = run_ok(ev, &mut cmd, None).with_context(|| {
            format!(
                "running AuthorizedPrincipalsCommand for {} as {}",
                account.name, self.user
            )
        })?;
        Ok(principals_of(&out.stdout))
    }
}

/// One principal per line; `#` comments and blank lines skipped; a line
/// with key options before the principal gives its last word.
fn principals_of(output: &str) -> Vec<String> {
    output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect()
}

/// sshd's tokens for AuthorizedPrincipalsCommand.
fn expand(word: &str, account: &User, cert: &CertTokens) -> String {
    expand_tokens(word, |token| {
        Some(match token {
            'u' => account.name.clone(),
            'U' => account.uid.to_string(),
            'h' => account.dir.to_string_lossy().into_owned(),
            'f' => cert.fingerprint.clone(),
            'F' => cert.ca_fingerprint.clone(),
            'i' => cert.key_id.clone(),
            'k' => cert.cert_base64.clone(),
            'K' => cert.ca_base64.clone(),
            's' => cert.serial.clone(),
            't' => cert.cert_type.clone(),
            'T' => cert.ca_type.clone(),
            // %C (connection), %D (routing domain): nothing outside a
            // connection that would change the mapping of an account.
            _ => String::new(),
        })
    })
}

/// `template` with each `%X` replaced by `value('X')` and `%%` by `%`; a
/// token `value` does not know (`None`) is kept as written.
pub fn expand_tokens(template: &str, value: impl Fn(char) -> Option<String>) -> String {
    let mut out = String::new();
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(token) => match value(token) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push('%');
                    out.push(token);
                }
            },
            None => out.push('%'),
        }
    }
    out
}

/// Principals that the mapping gives to more than one account, with the
/// accounts.
pub fn shared_principals(mapping: &[(String, Vec<String>)]) -> Vec<(String, Vec<String>)> {
    let mut by_principal: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (account, principals) in mapping {
        for p in principals {
            let owners = by_principal.entry(p).or_default();
            if !owners.contains(account) {
                owners.push(account.clone());
            }
        }
    }
    by_principal
        .into_iter()
        .filter(|(_, owners)| owners.len() > 1)
        .map(|(p, owners)| (p.to_owned(), owners))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_command_and_its_user_are_read() {
        let t = "authorizedprincipalsfile none\nauthorizedprincipalscommand /usr/local/bin/map %u %f\nauthorizedprincipalscommanduser nobody\n";
        assert_eq!(
            PrincipalsCommand::of_effective(t),
            Some(PrincipalsCommand {
                command: "/usr/local/bin/map %u %f".into(),
                user: "nobody".into()
            })
        );
        assert_eq!(
            PrincipalsCommand::of_effective("authorizedprincipalscommand none\n"),
            None
        );
    }

    #[test]
    fn output_lines_are_principals() {
        assert_eq!(
            principals_of("# roles\nops\n\nfrom=\"10.0.0.0/8\" maint\n"),
            vec!["ops", "maint"]
        );
    }

    #[test]
    fn a_principal_of_two_accounts_is_shared() {
        let mapping = vec![
            (
                "alice".to_owned(),
                vec!["alice".to_owned(), "fleet".to_owned()],
            ),
            ("bob".to_owned(), vec!["bob".to_owned(), "fleet".to_owned()]),
        ];
        assert_eq!(
            shared_principals(&mapping),
            vec![(
                "fleet".to_owned(),
                vec!["alice".to_owned(), "bob".to_owned()]
            )]
        );
        assert!(shared_principals(&mapping[..1]).is_empty());
    }
}
