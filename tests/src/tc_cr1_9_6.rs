//! TC_CR1.9_6 — CR1.9 strength of public key-based authentication: algorithm compliance.
//!
//! Proves, on the system's real sshd configuration (`sshd -T`, read-only)
//! and with the system's OpenSSL configuration: sshd offers modern
//! algorithms and no `ssh-dss`, no SHA-1 `ssh-rsa` signature (user keys,
//! host keys, CA signatures), no CBC or `none` cipher, no `hmac-md5` or
//! `hmac-sha1-96` MAC; an OpenSSL TLS client at the configured security
//! level completes a handshake with an RSA-2048 / SHA-256 server and refuses
//! an RSA-1024 server certificate and a SHA-1-signed one, and an OpenSSL
//! server refuses to load the RSA-1024 certificate at all.
//! Negative control: profile `weak-ssh-algorithms` (an sshd drop-in with
//! `PubkeyAcceptedAlgorithms +ssh-rsa,ssh-dss`).

use harness::command::{find_program, run as run_cmd, run_ok};
use harness::pki::{KeyType, LeafSpec, Pki, Timings};
use harness::sshd::SSHD;
use harness::{Case, Evidence};
use std::path::Path;
use std::process::Command;

pub const CASE: Case = Case::met(
    "TC_CR1.9_6",
    "CR1.9",
    "Strength of public key-based authentication: algorithm compliance",
    "sshd offers no DSA, SHA-1 RSA, CBC, none, MD5 or truncated SHA-1 algorithms; OpenSSL's security level refuses RSA < 2048 and SHA-1 signatures",
    run,
);

/// Signature algorithms that must not be offered: DSA and RSA with SHA-1
/// (plain keys and certificates).
const WEAK_SIGNATURES: [&str; 4] = [
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
];
/// Modern signature algorithms, at least one of which must be offered: an
/// empty or unparsed list would pass the absence checks vacuously.
const STRONG_SIGNATURES: [&str; 4] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

fn run(ev: &Evidence) -> anyhow::Result<()> {
    ev.step("sshd: the system's effective configuration (sshd -T), read-only");
    let mut failures = Vec::new();
    if Path::new(SSHD).is_file() {
        let t = run_ok(ev, Command::new(SSHD).arg("-T"), None)
            .map_err(|e| e.context("reading the system's sshd configuration"))?;
        failures.extend(check_sshd(ev, &t.stdout)?);
    } else {
        ev.note(format!(
            "{SSHD} is not installed (openssh-server): the sshd part is skipped"
        ));
    }

    ev.step("OpenSSL: TLS with the system's configuration and security level");
    failures.extend(check_openssl(ev)?);

    anyhow::ensure!(
        failures.is_empty(),
        "weak algorithms allowed: {}",
        failures.join("; ")
    );
    Ok(())
}

/// The sshd algorithm lists: every violation, as text.
fn check_sshd(ev: &Evidence, effective: &str) -> anyhow::Result<Vec<String>> {
    let list = |key: &str| -> anyhow::Result<Vec<String>> {
        let values: Vec<String> = effective
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .map(|v| v.split(',').map(|a| a.trim().to_owned()).collect())
            .unwrap_or_default();
        anyhow::ensure!(
            !values.is_empty() && !values[0].is_empty(),
            "sshd -T shows no {key}: cannot check it"
        );
        ev.note(format!("{key}: {}", values.join(",")));
        Ok(values)
    };
    let mut failures = Vec::new();
    for key in [
        "pubkeyacceptedalgorithms",
        "hostkeyalgorithms",
        "casignaturealgorithms",
    ] {
        let algs = list(key)?;
        anyhow::ensure!(
            algs.iter().any(|a| STRONG_SIGNATURES.contains(&a.as_str())),
            "{key} offers none of {}: the list is not what this check expects",
            STRONG_SIGNATURES.join(", ")
        );
        let weak: Vec<&String> = algs
            .iter()
            .filter(|a| WEAK_SIGNATURES.contains(&a.as_str()))
            .collect();
        if weak.is_empty() {
            ev.ok(format!("{key}: no ssh-dss, no SHA-1 ssh-rsa"));
        } else {
            failures.push(format!("sshd {key} offers {weak:?}"));
        }
    }

    let ciphers = list("ciphers")?;
    let weak: Vec<&String> = ciphers
        .iter()
        .filter(|c| {
            c.ends_with("-cbc") || c.contains("-cbc@") || *c == "none" || c.starts_with("arcfour")
        })
        .collect();
    if weak.is_empty() {
        ev.ok("ciphers: no CBC, no none, no arcfour");
    } else {
        failures.push(format!("sshd ciphers offer {weak:?}"));
    }

    let macs = list("macs")?;
    let weak: Vec<&String> = macs
        .iter()
        .filter(|m| m.starts_with("hmac-md5") || m.starts_with("hmac-sha1-96"))
        .collect();
    if weak.is_empty() {
        ev.ok("macs: no hmac-md5, no hmac-sha1-96");
    } else {
        failures.push(format!("sshd MACs offer {weak:?}"));
    }

    // Not a catalog criterion, recorded for the assessor.
    let kex = list("kexalgorithms")?;
    let sha1_kex: Vec<&String> = kex.iter().filter(|k| k.ends_with("-sha1")).collect();
    ev.note(format!(
        "key exchange with SHA-1: {}",
        if sha1_kex.is_empty() {
            "none offered".to_owned()
        } else {
            format!("{sha1_kex:?} offered")
        }
    ));
    Ok(failures)
}

/// TLS at the system's security level: every violation, as text.
fn check_openssl(ev: &Evidence) -> anyhow::Result<Vec<String>> {
    let times = Timings::new(ev);
    let pki = Pki::new(ev, &times)?;
    let conf = std::fs::read_to_string("/etc/ssl/openssl.cnf").unwrap_or_default();
    let level: Vec<&str> = conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.contains("SECLEVEL"))
        .collect();
    ev.note(format!(
        "security level in /etc/ssl/openssl.cnf: {}",
        if level.is_empty() {
            "not set (the distribution's built-in default applies)".to_owned()
        } else {
            level.join(" | ")
        }
    ));
    if let Some(openssl) = find_program("openssl") {
        let _ = run_cmd(ev, Command::new(openssl).arg("version"), None);
    }
    let root = pki.root().clone();
    let mut failures = Vec::new();

    let strong = pki.issue(
        &root,
        &LeafSpec::new("tls-rsa2048-sha256").key(KeyType::Rsa(2048)),
    )?;
    let mut server = pki.tls_server(&strong, false)?;
    let accepted = pki.tls_connect(&mut server, &root.cert)?;
    anyhow::ensure!(
        accepted.established,
        "the TLS client did not complete a handshake with an RSA-2048 / SHA-256 server: {:?}\n{}",
        accepted.verify,
        accepted.output.trim()
    );
    ev.ok("RSA-2048 certificate signed with SHA-256: handshake completed, chain verified (Verify return code: 0)");
    drop(server);

    let weak_key = pki.issue(&root, &LeafSpec::new("tls-rsa1024").key(KeyType::Rsa(1024)))?;
    // The system's OpenSSL as a server (no level given): it must not even
    // load the key. Should it load it, it listens only on its private
    // loopback and is stopped at once.
    match pki.tls_server(&weak_key, false) {
        Ok(server) => {
            drop(server);
            failures.push(
                "openssl s_server loaded an RSA-1024 certificate at the configured security level"
                    .to_owned(),
            );
        }
        Err(e) if format!("{e:#}").contains("too small") => {
            ev.ok("openssl s_server refuses to load the RSA-1024 certificate (ee key too small)")
        }
        Err(e) => return Err(e),
    }
    let mut server = pki.tls_server(&weak_key, true)?;
    let refused = pki.tls_connect(&mut server, &root.cert)?;
    match refused.verify {
        _ if refused.established => failures.push(
            "the TLS client completed a handshake with an RSA-1024 server certificate".to_owned(),
        ),
        Some((66, _)) => ev.ok("RSA-1024 server certificate: the client refuses it (verify error 66, EE certificate key too weak)"),
        other => failures.push(format!(
            "RSA-1024 server certificate: refused, but not for its key size ({other:?})"
        )),
    }
    drop(server);

    let sha1 = pki.issue(&root, &LeafSpec::new("tls-ec-sha1").digest("sha1"))?;
    let mut server = pki.tls_server(&sha1, true)?;
    let refused = pki.tls_connect(&mut server, &root.cert)?;
    match refused.verify {
        _ if refused.established => failures.push(
            "the TLS client completed a handshake with a SHA-1-signed server certificate".to_owned(),
        ),
        Some((68, _)) => ev.ok("SHA-1-signed server certificate: the client refuses it (verify error 68, CA signature digest algorithm too weak)"),
        other => failures.push(format!(
            "SHA-1-signed server certificate: refused, but not for its digest ({other:?})"
        )),
    }
    Ok(failures)
}
