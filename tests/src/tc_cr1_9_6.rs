//! TC_CR1.9_6 — CR1.9 strength of public key-based authentication: algorithm compliance.
//!
//! Proves, on the real configuration of every sshd the device runs (each
//! listening process's file and command-line options, Debian's
//! `SSHD_OPTS` included; `sshd -T -C`, read-only, for a plain connection,
//! root, every port sshd listens on and a connection each `Match` block
//! selects) and with the system's OpenSSL
//! configuration: sshd offers modern
//! algorithms and no `ssh-dss`, no SHA-1 `ssh-rsa` signature (user keys,
//! host keys, CA signatures), no CBC or `none` cipher, no `hmac-md5` or
//! `hmac-sha1-96` MAC; no host key sshd would load is DSA or RSA below
//! 2048 bits (`ssh-keygen -l` on every `hostkey` it names); an OpenSSL TLS client at the configured security
//! level completes a handshake with an RSA-2048 / SHA-256 server and refuses
//! an RSA-1024 server certificate and a SHA-1-signed one, and an OpenSSL
//! server refuses to load the RSA-1024 certificate at all.
//! A violation found is reported even when a later step cannot run.
//! Negative controls: profiles `weak-ssh-algorithms` (an sshd drop-in with
//! `PubkeyAcceptedAlgorithms +ssh-rsa,ssh-dss`) and
//! `weak-ssh-algorithms-in-match` (`+ssh-rsa` inside a `Match Address`
//! block only, which `sshd -T` alone never shows) and
//! `sshd-opts-weak-algorithms` (`-o PubkeyAcceptedAlgorithms=+ssh-rsa` in
//! /etc/default/ssh's `SSHD_OPTS`: only the running process shows it) and
//! `host-key-rsa-1024` (the RSA host key replaced by a 1024-bit one, which
//! sshd offers under the modern rsa-sha2 names).

use harness::actors::pki::{Ca, KeyType, LeafSpec, Pki, Timings};
use harness::actors::sshd_match::effective_configs_of;
use harness::actors::sshd_match::SSHD;
use harness::facts::{host_keys, sshd_instances};
use harness::runtime::case::Findings;
use harness::runtime::command::{find_program, run as run_cmd};
use harness::{Case, Control, Evidence};
use std::path::Path;
use std::process::Command;

pub const CASE: Case = Case::met(
    "TC_CR1.9_6",
    "CR1.9",
    "Strength of public key-based authentication: algorithm compliance",
    "sshd offers no DSA, SHA-1 RSA, CBC, none, MD5 or truncated SHA-1 algorithms and no DSA or RSA < 2048 host key; OpenSSL's security level refuses RSA < 2048 and SHA-1 signatures",
    run,
)
.fails_under(&[
    Control::Profile("weak-ssh-algorithms"),
    Control::Profile("weak-ssh-algorithms-in-match"),
    Control::Profile("sshd-opts-weak-algorithms"),
    Control::Profile("host-key-rsa-1024"),
]);

/// Signature algorithms that must not be offered: DSA and RSA with SHA-1
/// (plain keys and certificates).
const WEAK_SIGNATURES: [&str; 4] = [
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
];
/// The smallest RSA key the catalog accepts (as for TLS certificates).
const MIN_RSA_BITS: u32 = 2048;
/// Modern signature algorithms, at least one of which must be offered: an
/// empty or unparsed list would pass the absence checks vacuously.
const STRONG_SIGNATURES: [&str; 4] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let mut findings = Findings::default();
    ev.step("sshd: the effective configuration of every connection it treats differently (sshd -T -C), read-only");
    if Path::new(SSHD).is_file() {
        check_every_connection(ev, &mut findings);
    } else {
        ev.note(format!(
            "{SSHD} is not installed (openssh-server): the sshd part is skipped"
        ));
    }

    ev.step("OpenSSL: TLS with the system's configuration and security level");
    if let Err(e) = check_openssl(ev, &mut findings) {
        findings.step(Err(e));
    }
    findings.verdict("weak algorithms allowed")
}

/// For every configuration the device's sshd runs with (each listening
/// process's, command-line options included), every connection that
/// `Match` blocks, ports and root can tell apart: its algorithm lists, each
/// violation named with the connection it is for.
fn check_every_connection(ev: &Evidence, findings: &mut Findings) {
    let configurations = match sshd_instances::configurations() {
        Ok(found) => found,
        Err(e) => return findings.step(Err(e)),
    };
    for runs in configurations {
        let (evaluations, _members) = match effective_configs_of(ev, &runs) {
            Ok(evaluated) => evaluated,
            Err(e) => return findings.step(Err(e)),
        };
        let plain = &evaluations[0].config;
        check_host_keys(ev, plain, &runs.label, findings);
        for (i, evaluation) in evaluations.iter().enumerate() {
            let who = format!("{}, {}", runs.label, evaluation.spec.why);
            if i > 0 && evaluation.config == *plain {
                ev.ok(format!(
                    "{who}: the same configuration as a plain connection"
                ));
                continue;
            }
            ev.note(format!(
                "algorithms for {who} (sshd -T -C {}):",
                evaluation.spec.arg()
            ));
            check_sshd(ev, &evaluation.config, &who, findings);
        }
    }
}

/// The host keys a configuration names (they are global: no Match block
/// changes them): no DSA key, no RSA key below 2048 bits that sshd would
/// load (its `RequiredRSASize` may refuse it).
fn check_host_keys(ev: &Evidence, effective: &str, label: &str, findings: &mut Findings) {
    let floor = host_keys::required_rsa_size(effective);
    for path in host_keys::named_in(effective) {
        let key = match host_keys::read(ev, &path) {
            Ok(Some(key)) => key,
            Ok(None) => {
                ev.note(format!(
                    "{label}: host key {} does not exist (sshd skips it)",
                    path.display()
                ));
                continue;
            }
            Err(e) => return findings.step(Err(e)),
        };
        match key.kind.as_str() {
            "DSA" => findings.violation(format!(
                "{label} names the DSA host key {}: DSA is 1024 bits with SHA-1",
                key.describe()
            )),
            "RSA" if key.bits < MIN_RSA_BITS => match floor {
                Some(floor) if floor > key.bits => ev.ok(format!(
                    "{label}: host key {} is below {MIN_RSA_BITS} bits, but RequiredRSASize {floor} keeps sshd from loading it",
                    key.describe()
                )),
                _ => findings.violation(format!(
                    "{label} offers the host key {}: RSA below {MIN_RSA_BITS} bits{}",
                    key.describe(),
                    floor.map_or_else(String::new, |f| format!(" (RequiredRSASize {f})"))
                )),
            },
            _ => ev.ok(format!("{label}: host key {}", key.describe())),
        }
    }
}

/// One algorithm list of `sshd -T`: what in it is weak, what it says when
/// nothing is, and whether a modern signature algorithm must be in it (an
/// empty or unparsed list would pass the absence check vacuously).
struct AlgorithmRule {
    key: &'static str,
    weak: fn(&str) -> bool,
    clean: &'static str,
    needs_strong_signature: bool,
}

const RULES: [AlgorithmRule; 6] = [
    signature_rule("pubkeyacceptedalgorithms"),
    signature_rule("hostbasedacceptedalgorithms"),
    signature_rule("hostkeyalgorithms"),
    signature_rule("casignaturealgorithms"),
    AlgorithmRule {
        key: "ciphers",
        weak: |c| {
            c.ends_with("-cbc") || c.contains("-cbc@") || c == "none" || c.starts_with("arcfour")
        },
        clean: "no CBC, no none, no arcfour",
        needs_strong_signature: false,
    },
    AlgorithmRule {
        key: "macs",
        weak: |m| m.starts_with("hmac-md5") || m.starts_with("hmac-sha1-96"),
        clean: "no hmac-md5, no hmac-sha1-96",
        needs_strong_signature: false,
    },
];

const fn signature_rule(key: &'static str) -> AlgorithmRule {
    AlgorithmRule {
        key,
        weak: |a| WEAK_SIGNATURES.contains(&a),
        clean: "no ssh-dss, no SHA-1 ssh-rsa",
        needs_strong_signature: true,
    }
}

/// The sshd algorithm lists of one connection (`sshd -T -C` output): each
/// violation, or why a list cannot be checked, into `findings`.
fn check_sshd(ev: &Evidence, effective: &str, who: &str, findings: &mut Findings) {
    let list = |key: &str| -> Vec<String> {
        effective
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .map(|v| v.split(',').map(|a| a.trim().to_owned()).collect())
            .unwrap_or_default()
    };
    for rule in &RULES {
        let algs = list(rule.key);
        if algs.is_empty() || algs[0].is_empty() {
            findings.step(Err(anyhow::anyhow!(
                "sshd -T shows no {} for {who}: cannot check it",
                rule.key
            )));
            continue;
        }
        ev.note(format!("{}: {}", rule.key, algs.join(",")));
        if rule.needs_strong_signature
            && !algs.iter().any(|a| STRONG_SIGNATURES.contains(&a.as_str()))
        {
            findings.step(Err(anyhow::anyhow!(
                "{} for {who} offers none of {}: the list is not what this check expects",
                rule.key,
                STRONG_SIGNATURES.join(", ")
            )));
            continue;
        }
        let weak: Vec<&String> = algs.iter().filter(|a| (rule.weak)(a)).collect();
        if weak.is_empty() {
            ev.ok(format!("{}: {}", rule.key, rule.clean));
        } else {
            findings.violation(format!("sshd {} offers {weak:?} for {who}", rule.key));
        }
    }

    // Not a catalog criterion, recorded for the assessor.
    let sha1_kex: Vec<String> = list("kexalgorithms")
        .into_iter()
        .filter(|k| k.ends_with("-sha1"))
        .collect();
    ev.note(format!(
        "key exchange with SHA-1: {}",
        if sha1_kex.is_empty() {
            "none offered".to_owned()
        } else {
            format!("{sha1_kex:?} offered")
        }
    ));
}

/// TLS at the system's security level: each violation into `findings` as
/// it is found (an error later does not take it back).
fn check_openssl(ev: &Evidence, findings: &mut Findings) -> anyhow::Result<()> {
    let times = Timings::new(ev);
    let pki = Pki::new(ev, &times)?;
    note_security_level(ev);
    let root = pki.root().clone();
    strong_certificate_accepted(ev, &pki, &root)?;
    weak_key_refused(ev, &pki, &root, findings)?;
    sha1_refused(ev, &pki, &root, findings)
}

/// The security level /etc/ssl/openssl.cnf sets, and OpenSSL's version.
fn note_security_level(ev: &Evidence) {
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
}

/// Positive half: an RSA-2048 / SHA-256 server completes the handshake.
fn strong_certificate_accepted(ev: &Evidence, pki: &Pki, root: &Ca) -> anyhow::Result<()> {
    let strong = pki.issue(
        root,
        &LeafSpec::new("tls-rsa2048-sha256").key(KeyType::Rsa(2048)),
    )?;
    let mut server = pki.tls_server(&strong, false)?;
    let accepted = pki.tls_connect(&mut server, &root.cert)?;
    anyhow::ensure!(
        accepted.established,
        "the TLS client did not complete a handshake with an RSA-2048 / SHA-256 server: {}\n{}",
        accepted.verify_text(),
        accepted.output.trim()
    );
    ev.ok("RSA-2048 certificate signed with SHA-256: handshake completed, chain verified (Verify return code: 0)");
    Ok(())
}

/// An RSA-1024 certificate: the server does not load it, the client
/// refuses it for its key size.
fn weak_key_refused(
    ev: &Evidence,
    pki: &Pki,
    root: &Ca,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let weak_key = pki.issue(root, &LeafSpec::new("tls-rsa1024").key(KeyType::Rsa(1024)))?;
    // The system's OpenSSL as a server (no level given): it must not even
    // load the key. Should it load it, it listens only on its private
    // loopback and is stopped at once.
    match pki.tls_server(&weak_key, false) {
        Ok(server) => {
            drop(server);
            findings.violation(
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
        _ if refused.established => findings.violation(
            "the TLS client completed a handshake with an RSA-1024 server certificate".to_owned(),
        ),
        Some((66, _)) => ev.ok("RSA-1024 server certificate: the client refuses it (verify error 66, EE certificate key too weak)"),
        _ => findings.violation(format!(
            "RSA-1024 server certificate: refused, but not for its key size ({})",
            refused.verify_text()
        )),
    }
    Ok(())
}

/// A SHA-1-signed certificate: the client refuses it for its digest.
fn sha1_refused(
    ev: &Evidence,
    pki: &Pki,
    root: &Ca,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let sha1 = pki.issue(root, &LeafSpec::new("tls-ec-sha1").digest("sha1"))?;
    let mut server = pki.tls_server(&sha1, true)?;
    let refused = pki.tls_connect(&mut server, &root.cert)?;
    match refused.verify {
        _ if refused.established => findings.violation(
            "the TLS client completed a handshake with a SHA-1-signed server certificate".to_owned(),
        ),
        Some((68, _)) => ev.ok("SHA-1-signed server certificate: the client refuses it (verify error 68, CA signature digest algorithm too weak)"),
        _ => findings.violation(format!(
            "SHA-1-signed server certificate: refused, but not for its digest ({})",
            refused.verify_text()
        )),
    }
    Ok(())
}
