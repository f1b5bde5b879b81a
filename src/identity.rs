//! The target's identity for the report: what was tested, so an assessor
//! can tie the verdicts to one system state. Its one job is to read facts
//! (os-release, kernel, architecture, package versions, checksums of the
//! configuration files the test cases read); it changes nothing.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The packages the evidence depends on: the PAM stack, sshd, openssl and
/// the optional mechanisms (fail2ban, passwdqc, TOTP).
pub const PACKAGES: &[&str] = &[
    "libpam-runtime",
    "libpam-modules",
    "openssh-server",
    "openssl",
    "fail2ban",
    "libpam-passwdqc",
    "libpam-google-authenticator",
];

/// Configuration files the test cases read: single files, then
/// directories whose regular files all count.
const CONFIG_FILES: &[&str] = &[
    "/etc/security/faillock.conf",
    "/etc/passwdqc.conf",
    "/etc/security/pwquality.conf",
    "/etc/login.defs",
    "/etc/ssh/sshd_config",
    "/etc/fail2ban/jail.conf",
    "/etc/fail2ban/jail.local",
];
const CONFIG_DIRS: &[&str] = &[
    "/etc/pam.d",
    "/etc/security/pwquality.conf.d",
    "/etc/ssh/sshd_config.d",
    "/etc/fail2ban/jail.d",
];

#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// `/etc/os-release` as (key, value) pairs, quotes removed; without
    /// the distributor's web addresses (`*_URL`), which identify no system
    /// state and would put external addresses into a self-contained report.
    pub os_release: Vec<(String, String)>,
    /// `uname -srv`.
    pub kernel: String,
    /// `uname -m`.
    pub architecture: String,
    /// (package, version or "not installed").
    pub packages: Vec<(String, String)>,
    /// (path, sha256 hex) of each configuration file read.
    pub config_sha256: Vec<(String, String)>,
}

impl Identity {
    /// Read the running system's identity. A fact that cannot be read is
    /// reported as such in its place, never left out silently.
    pub fn collect() -> Identity {
        let os_release = std::fs::read_to_string("/etc/os-release")
            .map(|t| parse_os_release(&t))
            .unwrap_or_else(|e| vec![("error".to_owned(), format!("/etc/os-release: {e}"))]);
        Identity {
            os_release,
            kernel: output_of("uname", &["-srv"]),
            architecture: output_of("uname", &["-m"]),
            packages: PACKAGES
                .iter()
                .map(|p| ((*p).to_owned(), package_version(p)))
                .collect(),
            config_sha256: {
                let mut sums = sha256_of(&config_files()).unwrap_or_else(|e| {
                    vec![("(checksums unavailable)".to_owned(), format!("{e:#}"))]
                });
                sums.push((
                    "sshd -T (the effective sshd configuration)".to_owned(),
                    effective_sshd_sha256(),
                ));
                sums
            },
        }
    }

    /// `PRETTY_NAME`, or the best other name os-release gives.
    pub fn pretty_name(&self) -> &str {
        ["PRETTY_NAME", "NAME", "ID"]
            .iter()
            .find_map(|k| {
                self.os_release
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.as_str())
            })
            .unwrap_or("unknown system")
    }
}

/// `KEY=value` lines; values may be quoted with `"` or `'`.
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.trim().ends_with("_URL"))
        .map(|(k, v)| {
            let v = v.trim();
            let unquoted = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_owned(), unquoted.replace("\\\"", "\""))
        })
        .collect()
}

/// A program's trimmed stdout, or why there is none.
fn output_of(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => format!("unknown ({program} exited with {})", out.status),
        Err(e) => format!("unknown (cannot run {program}: {e})"),
    }
}

/// The installed version of a Debian package, "not installed" when dpkg
/// knows no installed version of it.
fn package_version(package: &str) -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status} ${Version}", package])
        .output();
    match out {
        Ok(out) => installed_version(&String::from_utf8_lossy(&out.stdout))
            .unwrap_or_else(|| "not installed".to_owned()),
        Err(e) => format!("unknown (cannot run dpkg-query: {e})"),
    }
}

/// The version in dpkg-query's `STATUS VERSION`, only for status installed.
pub fn installed_version(status_and_version: &str) -> Option<String> {
    let (status, version) = status_and_version.trim().split_once(' ')?;
    (status == "installed" && !version.is_empty()).then(|| version.to_owned())
}

/// The configuration files present on this system, sorted.
fn config_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = CONFIG_FILES.iter().map(PathBuf::from).collect();
    for dir in CONFIG_DIRS {
        if let Ok(entries) = std::fs::read_dir(dir) {
            files.extend(entries.flatten().map(|e| e.path()));
        }
    }
    files.retain(|p| p.is_file());
    files.sort();
    files
}

/// sha256 of each file, with the target's own `sha256sum`.
fn sha256_of(files: &[PathBuf]) -> Result<Vec<(String, String)>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let out = Command::new("sha256sum")
        .arg("--")
        .args(files)
        .output()
        .context("cannot run sha256sum")?;
    anyhow::ensure!(
        out.status.success(),
        "sha256sum exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(parse_sha256sum(&String::from_utf8_lossy(&out.stdout)))
}

/// sha256 of what `sshd -T` prints: the configuration sshd applies, with
/// its defaults and the drop-ins resolved.
fn effective_sshd_sha256() -> String {
    let Some(sshd) = ["/usr/sbin/sshd", "/sbin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
    else {
        return "not installed".to_owned();
    };
    let config = match Command::new(sshd).arg("-T").output() {
        Ok(out) if out.status.success() => out.stdout,
        Ok(out) => {
            return format!(
                "unknown (sshd -T exited with {}: {})",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
        }
        Err(e) => return format!("unknown (cannot run sshd -T: {e})"),
    };
    let sum = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            if let Some(mut stdin) = child.stdin.take() {
                use std::io::Write as _;
                stdin.write_all(&config)?;
            }
            child.wait_with_output()
        });
    match sum {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_owned(),
        Ok(out) => format!("unknown (sha256sum exited with {})", out.status),
        Err(e) => format!("unknown (cannot run sha256sum: {e})"),
    }
}

/// `HASH  PATH` lines (text mode) or `HASH *PATH` (binary mode).
pub fn parse_sha256sum(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(hash, rest)| {
            let path = rest.trim_start_matches([' ', '*']);
            (Path::new(path).display().to_string(), hash.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_lose_their_quotes() {
        let parsed = parse_os_release(
            "# comment\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nVERSION_ID='13'\n\nHOME_URL=\"https://www.debian.org/\"\n",
        );
        assert_eq!(
            parsed,
            vec![
                (
                    "PRETTY_NAME".to_owned(),
                    "Debian GNU/Linux 13 (trixie)".to_owned()
                ),
                ("ID".to_owned(), "debian".to_owned()),
                ("VERSION_ID".to_owned(), "13".to_owned()),
            ]
        );
        let identity = Identity {
            os_release: parsed,
            ..Identity::default()
        };
        assert_eq!(identity.pretty_name(), "Debian GNU/Linux 13 (trixie)");
        assert_eq!(Identity::default().pretty_name(), "unknown system");
    }

    #[test]
    fn only_an_installed_package_has_a_version() {
        assert_eq!(
            installed_version("installed 1:9.2p1-2+deb12u3"),
            Some("1:9.2p1-2+deb12u3".to_owned())
        );
        assert_eq!(installed_version("config-files 1.0-1"), None);
        assert_eq!(installed_version("not-installed "), None);
        assert_eq!(installed_version(""), None);
    }

    #[test]
    fn sha256sum_lines_give_path_and_hash() {
        let parsed = parse_sha256sum("abc123  /etc/pam.d/login\ndef456 */etc/login.defs\n");
        assert_eq!(
            parsed,
            vec![
                ("/etc/pam.d/login".to_owned(), "abc123".to_owned()),
                ("/etc/login.defs".to_owned(), "def456".to_owned()),
            ]
        );
    }
}
