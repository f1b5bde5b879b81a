//! A per-run X.509 PKI, built and exercised with the target's own `openssl`.
//!
//! Everything lives in one private temporary directory (mode 0700) that is
//! removed, CA and private keys included, when the [`Pki`] is dropped:
//!
//! - a root CA and an intermediate CA signed by it ([`Pki::root`],
//!   [`Pki::intermediate`]); each is an `openssl ca` instance with its own
//!   database, so it can revoke and publish a CRL, and serve OCSP;
//! - leaf certificates ([`Pki::issue`], [`LeafSpec`]) with explicit
//!   validity windows: expired and not-yet-valid certificates get their
//!   dates from `openssl ca -startdate/-enddate`, relative to the clock of
//!   the target, so nothing sleeps and a board without RTC still works;
//! - certificates that must not verify: from CAs outside the chain
//!   ([`Pki::new_root_ca`]), signed by a non-CA certificate
//!   ([`Pki::issue_from_leaf`]), or with one flipped signature byte
//!   ([`Pki::tampered`]);
//! - revocation ([`Pki::revoke`], [`Pki::crl`]) and an OCSP responder
//!   ([`Pki::ocsp_responder`], [`Pki::ocsp_status`]);
//! - OpenSSL's mock CMP server and the `openssl cmp` client
//!   ([`Pki::cmp_server`], [`Pki::cmp_initial_request`]);
//! - a TLS server and client ([`Pki::tls_server`], [`Pki::tls_connect`]) to
//!   see what the system's OpenSSL security level accepts;
//! - `openssl verify`, with its verdict parsed ([`Verification`]).
//!
//! The servers (in `services.rs`) run as
//! [`IsolatedServer`](crate::actors::net::IsolatedServer)s on a private loopback.
//! Every openssl operation is timed into [`Timings`] (`timings.rs`); the
//! times and their total go into the evidence when the case ends.

mod services;
mod timings;

pub use services::{CmpOutcome, CmpRequest, OcspAnswer, TlsHandshake};
pub use timings::{Timings, ASSESSED_OPERATION_TIME};

use crate::actors::private_dir::PrivateDir;
use crate::runtime::case::skip;
use crate::runtime::command::{find_program, path_str, run, Ran};
use crate::runtime::evidence::utc_timestamp;
use crate::runtime::password::random_token;
use crate::Evidence;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Key algorithms. EC P-256 and Ed25519 are generated in milliseconds; RSA
/// only where a check is about RSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    EcP256,
    Ed25519,
    Rsa(u32),
}

impl KeyType {
    fn genpkey_args(self) -> Vec<String> {
        match self {
            KeyType::EcP256 => vec![
                "-algorithm".into(),
                "EC".into(),
                "-pkeyopt".into(),
                "ec_paramgen_curve:P-256".into(),
            ],
            KeyType::Ed25519 => vec!["-algorithm".into(), "ED25519".into()],
            KeyType::Rsa(bits) => vec![
                "-algorithm".into(),
                "RSA".into(),
                "-pkeyopt".into(),
                format!("rsa_keygen_bits:{bits}"),
            ],
        }
    }

    fn describe(self) -> String {
        match self {
            KeyType::EcP256 => "EC P-256".into(),
            KeyType::Ed25519 => "Ed25519".into(),
            KeyType::Rsa(bits) => format!("RSA-{bits}"),
        }
    }
}

/// When a certificate is valid, relative to the target's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From now on, for a day.
    Current,
    /// Ended yesterday (from two days ago to one day ago).
    Expired,
    /// Starts tomorrow (from in one day to in two days).
    NotYetValid,
}

/// As the evidence says it: "valid now", "expired", "not yet valid".
impl std::fmt::Display for Validity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Validity::Current => "valid now",
            Validity::Expired => "expired",
            Validity::NotYetValid => "not yet valid",
        })
    }
}

impl Validity {
    /// `openssl ca` date options (`YYYYMMDDHHMMSSZ`).
    fn ca_args(self) -> Vec<String> {
        let day = 86_400;
        let window = match self {
            Validity::Current => return vec!["-days".into(), "1".into()],
            Validity::Expired => (-2 * day, -day),
            Validity::NotYetValid => (day, 2 * day),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let stamp = |offset: i64| {
            utc_timestamp((now + offset).max(0) as u64)
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == 'Z')
                .collect::<String>()
        };
        vec![
            "-startdate".into(),
            stamp(window.0),
            "-enddate".into(),
            stamp(window.1),
        ]
    }
}

/// A certificate authority: its certificate, key and `openssl ca` set-up.
#[derive(Debug, Clone)]
pub struct Ca {
    /// Common name of its subject.
    pub name: String,
    pub cert: PathBuf,
    key: PathBuf,
    config: PathBuf,
    /// The `openssl ca` database (`index.txt`): what the OCSP responder answers from.
    index: PathBuf,
}

impl Ca {
    /// `/CN=…`, as `openssl cmp -recipient` wants it.
    pub fn subject(&self) -> String {
        format!("/CN={}", self.name)
    }
}

/// An end-entity certificate and its private key.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub name: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What to issue: subject, subjectAltNames, key, validity, signature digest.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    name: String,
    alt_names: Vec<String>,
    key: KeyType,
    validity: Validity,
    digest: &'static str,
    authority_key_id: bool,
}

impl LeafSpec {
    /// `CN=name`, EC P-256, valid now, SHA-256.
    pub fn new(name: &str) -> Self {
        LeafSpec {
            name: name.to_owned(),
            alt_names: Vec::new(),
            key: KeyType::EcP256,
            validity: Validity::Current,
            digest: "sha256",
            authority_key_id: true,
        }
    }
    /// Leave out the authorityKeyIdentifier extension, so that a verifier
    /// finds the issuer by its name alone (an impostor CA's certificate
    /// then leads to the real CA of that name).
    pub fn without_authority_key_id(mut self) -> Self {
        self.authority_key_id = false;
        self
    }
    /// A subjectAltName entry, e.g. `DNS:a.fr1.test` or `email:a@fr1.test`.
    pub fn alt_name(mut self, name: impl Into<String>) -> Self {
        self.alt_names.push(name.into());
        self
    }
    pub fn key(mut self, key: KeyType) -> Self {
        self.key = key;
        self
    }
    pub fn validity(mut self, validity: Validity) -> Self {
        self.validity = validity;
        self
    }
    /// The digest the CA signs with (`sha256`, or `sha1` for a weak certificate).
    pub fn digest(mut self, digest: &'static str) -> Self {
        self.digest = digest;
        self
    }
}

/// How `openssl ca` signs one request.
struct Profile<'a> {
    /// For the evidence and the timing list.
    subject: &'a str,
    /// Section of the CA configuration (`leaf_ext`, `sub_ca_ext`).
    extensions: &'static str,
    validity: Validity,
    digest: &'static str,
}

impl<'a> Profile<'a> {
    fn leaf(subject: &'a str) -> Self {
        Profile {
            subject,
            extensions: "leaf_ext",
            validity: Validity::Current,
            digest: "sha256",
        }
    }
    fn sub_ca(subject: &'a str) -> Self {
        Profile {
            extensions: "sub_ca_ext",
            ..Profile::leaf(subject)
        }
    }
}

/// The trust given to `openssl verify`: anchors (`-CAfile`) and the
/// intermediates that may be used to build the chain (`-untrusted`).
#[derive(Debug, Clone)]
pub struct Trust {
    pub anchors: PathBuf,
    pub intermediates: Option<PathBuf>,
}

impl Trust {
    /// Only `anchor`, no intermediates.
    pub fn only(anchor: &Path) -> Self {
        Trust {
            anchors: anchor.to_path_buf(),
            intermediates: None,
        }
    }
}

/// The verdict of `openssl verify` on one certificate.
#[derive(Debug, Clone)]
pub struct Verification {
    pub cert: PathBuf,
    /// Exit status 0 and the `CERT: OK` line.
    pub accepted: bool,
    /// `error N at D depth lookup: TEXT` → (N, TEXT).
    pub error: Option<(u32, String)>,
    pub output: String,
}

impl Verification {
    /// The certificate verified: `openssl verify` ran, said `OK` and exited 0.
    pub fn assert_accepted(&self, what: &str) -> Result<()> {
        if !self.accepted {
            bail!(
                "{what}: `openssl verify` did not accept {}: {}",
                self.cert.display(),
                self.output.trim()
            );
        }
        Ok(())
    }

    /// The certificate was refused with one of OpenSSL's error `codes`
    /// (e.g. `&[10]`, "certificate has expired"), not for some other
    /// reason. Some errors changed numbers between OpenSSL releases, hence
    /// a list.
    pub fn assert_refused_with(&self, what: &str, codes: &[u32]) -> Result<()> {
        match &self.error {
            _ if self.accepted => bail!(
                "{what}: `openssl verify` accepted {}, it must be refused",
                self.cert.display()
            ),
            Some((got, _)) if codes.contains(got) => Ok(()),
            Some((got, text)) => bail!(
                "{what}: refused, but for another reason (error {got}: {text}; expected error {codes:?})"
            ),
            None => bail!(
                "{what}: `openssl verify` failed without a verification error (expected error {codes:?}): {}",
                self.output.trim()
            ),
        }
    }

    /// "error 10: certificate has expired", for the evidence.
    pub fn describe(&self) -> String {
        match &self.error {
            _ if self.accepted => "OK".into(),
            Some((code, text)) => format!("error {code}: {text}"),
            None => "failed".into(),
        }
    }
}
pub struct Pki {
    path: PathBuf,
    root: Ca,
    intermediate: Ca,
    timings: Timings,
    ev: Evidence,
    // Last: removed after everything above is done with it.
    _dir: PrivateDir,
}

impl Pki {
    /// A root CA and an intermediate CA in a fresh private directory.
    /// Skips the case when `openssl` is not installed.
    pub fn new(ev: &Evidence, timings: &Timings) -> Result<Self> {
        if find_program("openssl").is_none() {
            return skip("openssl is not installed (package openssl)");
        }
        let dir = PrivateDir::create(ev, "fr1-pki-", "every CA, key and certificate of this run")?;
        let path = dir.path().to_path_buf();
        let tag = random_token(6)?;
        ev.step(format!(
            "per-run PKI in {} (mode 0700): root CA and intermediate CA",
            path.display()
        ));
        let placeholder = Ca {
            name: String::new(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            config: PathBuf::new(),
            index: PathBuf::new(),
        };
        let mut pki = Pki {
            path,
            root: placeholder.clone(),
            intermediate: placeholder,
            timings: timings.clone(),
            ev: ev.clone(),
            _dir: dir,
        };
        pki.root = pki.new_root_ca("root", &format!("FR1 test root CA {tag}"))?;
        pki.intermediate = pki.new_sub_ca(
            &pki.root,
            "intermediate",
            &format!("FR1 test intermediate CA {tag}"),
        )?;
        Ok(pki)
    }

    pub fn root(&self) -> &Ca {
        &self.root
    }

    pub fn intermediate(&self) -> &Ca {
        &self.intermediate
    }

    /// The run's trust: the root as anchor, the intermediate to build chains.
    pub fn chain(&self) -> Trust {
        Trust {
            anchors: self.root.cert.clone(),
            intermediates: Some(self.intermediate.cert.clone()),
        }
    }

    /// The private directory (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.path
    }

    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// A file in the private directory.
    pub fn write_file(&self, name: &str, content: &[u8]) -> Result<PathBuf> {
        let path = self.path.join(name);
        fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The certificates in `parts` concatenated into one PEM file (a chain
    /// as a peer would present it, for `-untrusted`).
    pub fn bundle(&self, name: &str, parts: &[&Path]) -> Result<PathBuf> {
        let mut text = String::new();
        for p in parts {
            text.push_str(
                &fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            );
        }
        self.write_file(name, text.as_bytes())
    }

    /// Run `openssl ARGS`, recorded and timed as `what`.
    pub fn openssl(&self, what: &str, args: &[&str]) -> Result<Ran> {
        let mut cmd = Command::new("openssl");
        cmd.args(args).current_dir(&self.path);
        self.timed(what, &mut cmd)
    }

    fn openssl_ok(&self, what: &str, args: &[&str]) -> Result<Ran> {
        let ran = self.openssl(what, args)?;
        if !ran.success {
            bail!("{what} failed: {}", ran.all_output().trim());
        }
        Ok(ran)
    }

    fn timed(&self, what: &str, cmd: &mut Command) -> Result<Ran> {
        let started = Instant::now();
        let ran = run(&self.ev, cmd, None);
        self.timings.record(what, started.elapsed());
        ran
    }

    fn new_key(&self, what: &str, key: KeyType, path: &Path) -> Result<()> {
        let mut args: Vec<String> = vec!["genpkey".into()];
        args.extend(key.genpkey_args());
        args.extend(["-out".into(), path_str(path)?]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.openssl_ok(&format!("generate {} key ({what})", key.describe()), &args)?;
        Ok(())
    }

    /// A self-signed CA named `common_name`, with its own `openssl ca`
    /// database, in `ca-<stem>/`. Used for the run's root and for CAs that
    /// must *not* be trusted (an unrelated CA, an impostor with a trusted
    /// CA's name).
    pub fn new_root_ca(&self, stem: &str, common_name: &str) -> Result<Ca> {
        let ca = self.ca_layout(stem, common_name)?;
        self.new_key(&format!("CA {common_name}"), KeyType::EcP256, &ca.key)?;
        self.openssl_ok(
            &format!("self-sign CA certificate {common_name}"),
            &[
                "req",
                "-x509",
                "-new",
                "-config",
                &path_str(&ca.config)?,
                "-key",
                &path_str(&ca.key)?,
                "-subj",
                &ca.subject(),
                "-days",
                "2",
                "-extensions",
                "root_ext",
                "-out",
                &path_str(&ca.cert)?,
            ],
        )?;
        Ok(ca)
    }

    /// A CA certificate for `common_name` issued by `parent` (pathlen 0).
    fn new_sub_ca(&self, parent: &Ca, stem: &str, common_name: &str) -> Result<Ca> {
        let ca = self.ca_layout(stem, common_name)?;
        self.new_key(&format!("CA {common_name}"), KeyType::EcP256, &ca.key)?;
        let csr = ca.cert.with_extension("csr");
        self.request(&ca.key, &ca.subject(), &[], &csr)?;
        self.sign(parent, &csr, &ca.cert, &Profile::sub_ca(common_name))?;
        Ok(ca)
    }

    fn ca_layout(&self, stem: &str, common_name: &str) -> Result<Ca> {
        let dir = self.path.join(format!("ca-{stem}"));
        let issued = dir.join("issued");
        fs::create_dir_all(&issued).with_context(|| format!("creating {}", issued.display()))?;
        let index = dir.join("index.txt");
        fs::write(&index, "").with_context(|| format!("writing {}", index.display()))?;
        fs::write(dir.join("serial"), "1000\n")
            .with_context(|| format!("writing in {}", dir.display()))?;
        fs::write(dir.join("crlnumber"), "1000\n")
            .with_context(|| format!("writing in {}", dir.display()))?;
        let config = dir.join("openssl.cnf");
        fs::write(&config, ca_config(&dir))?;
        Ok(Ca {
            name: common_name.to_owned(),
            cert: dir.join("ca.pem"),
            key: dir.join("ca.key"),
            config,
            index,
        })
    }

    /// A certificate request for `key` (any CA config serves as `req` config).
    fn request(&self, key: &Path, subject: &str, alt_names: &[String], out: &Path) -> Result<()> {
        let mut args: Vec<String> = vec![
            "req".into(),
            "-new".into(),
            "-config".into(),
            path_str(&self.root_config())?,
            "-key".into(),
            path_str(key)?,
            "-subj".into(),
            subject.into(),
            "-out".into(),
            path_str(out)?,
        ];
        if !alt_names.is_empty() {
            args.push("-addext".into());
            args.push(format!("subjectAltName={}", alt_names.join(",")));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.openssl_ok(&format!("certificate request {subject}"), &args)?;
        Ok(())
    }

    fn root_config(&self) -> PathBuf {
        // Before the root exists (while it is being made) its config is
        // already written by ca_layout.
        self.path.join("ca-root").join("openssl.cnf")
    }

    /// `openssl ca` signs `csr` into `out`.
    fn sign(&self, ca: &Ca, csr: &Path, out: &Path, profile: &Profile) -> Result<()> {
        let mut args: Vec<String> = vec![
            "ca".into(),
            "-batch".into(),
            "-notext".into(),
            "-config".into(),
            path_str(&ca.config)?,
            "-extensions".into(),
            profile.extensions.into(),
            "-md".into(),
            profile.digest.into(),
            "-in".into(),
            path_str(csr)?,
            "-out".into(),
            path_str(out)?,
        ];
        args.extend(profile.validity.ca_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.openssl_ok(
            &format!(
                "{} signs {} ({}, {})",
                ca.name, profile.subject, profile.validity, profile.digest
            ),
            &args,
        )?;
        Ok(())
    }

    /// A new key and a certificate for it issued by `ca`.
    pub fn issue(&self, ca: &Ca, spec: &LeafSpec) -> Result<Leaf> {
        let leaf = self.leaf_paths(&spec.name);
        self.new_key(&spec.name, spec.key, &leaf.key)?;
        let csr = leaf.cert.with_extension("csr");
        self.request(
            &leaf.key,
            &format!("/CN={}", spec.name),
            &spec.alt_names,
            &csr,
        )?;
        let profile = Profile {
            validity: spec.validity,
            digest: spec.digest,
            extensions: if spec.authority_key_id {
                "leaf_ext"
            } else {
                "leaf_no_akid_ext"
            },
            ..Profile::leaf(&spec.name)
        };
        self.sign(ca, &csr, &leaf.cert, &profile)?;
        self.ev.note(format!(
            "issued {} by {}: {} key, {}, {}{}",
            leaf.name,
            ca.name,
            spec.key.describe(),
            spec.validity,
            spec.digest,
            if spec.alt_names.is_empty() {
                String::new()
            } else {
                format!(", subjectAltName {}", spec.alt_names.join(","))
            }
        ));
        Ok(leaf)
    }

    /// Have `ca` sign a request made elsewhere (e.g. by a test user from
    /// its own key); the certificate is written as `<name>.pem`.
    pub fn sign_request(&self, ca: &Ca, csr: &Path, name: &str) -> Result<PathBuf> {
        let out = self.path.join(format!("{name}.pem"));
        self.sign(ca, csr, &out, &Profile::leaf(name))?;
        Ok(out)
    }

    /// A certificate for a new key whose signer is `issuer`, an end-entity
    /// certificate (CA:FALSE) — as if a leaf's owner acted as a CA.
    pub fn issue_from_leaf(&self, issuer: &Leaf, name: &str) -> Result<Leaf> {
        let leaf = self.leaf_paths(name);
        self.new_key(name, KeyType::EcP256, &leaf.key)?;
        let csr = leaf.cert.with_extension("csr");
        self.request(&leaf.key, &format!("/CN={name}"), &[], &csr)?;
        self.openssl_ok(
            &format!("{} (not a CA) signs {name}", issuer.name),
            &[
                "x509",
                "-req",
                "-in",
                &path_str(&csr)?,
                "-CA",
                &path_str(&issuer.cert)?,
                "-CAkey",
                &path_str(&issuer.key)?,
                "-set_serial",
                "4242",
                "-days",
                "1",
                "-sha256",
                "-extfile",
                &path_str(&self.root_config())?,
                "-extensions",
                "leaf_ext",
                "-out",
                &path_str(&leaf.cert)?,
            ],
        )?;
        Ok(leaf)
    }

    fn leaf_paths(&self, name: &str) -> Leaf {
        Leaf {
            name: name.to_owned(),
            cert: self.path.join(format!("{name}.pem")),
            key: self.path.join(format!("{name}.key")),
        }
    }

    /// A copy of `cert` with one byte of its signature value flipped: the
    /// last byte of the DER encoding, which is the last byte of the
    /// signature BIT STRING. Everything else is byte-identical.
    pub fn tampered(&self, cert: &Path) -> Result<PathBuf> {
        let stem = cert
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let der = self.path.join(format!("{stem}.der"));
        let bad_der = self.path.join(format!("{stem}-tampered.der"));
        let out = self.path.join(format!("{stem}-tampered.pem"));
        self.openssl_ok(
            &format!("DER of {stem}"),
            &[
                "x509",
                "-in",
                &path_str(cert)?,
                "-outform",
                "DER",
                "-out",
                &path_str(&der)?,
            ],
        )?;
        let mut bytes = fs::read(&der).with_context(|| format!("reading {}", der.display()))?;
        let Some(last) = bytes.last_mut() else {
            bail!("{} is empty", der.display());
        };
        let before = *last;
        *last ^= 0x01;
        let after = *last;
        fs::write(&bad_der, &bytes).with_context(|| format!("writing {}", bad_der.display()))?;
        self.openssl_ok(
            &format!("PEM of tampered {stem}"),
            &[
                "x509",
                "-inform",
                "DER",
                "-in",
                &path_str(&bad_der)?,
                "-out",
                &path_str(&out)?,
            ],
        )?;
        // The tampered certificate must still parse and differ from the
        // original in that one byte only, or the check would test a
        // broken file instead of a broken signature.
        let round_trip = self.path.join(format!("{stem}-tampered-check.der"));
        self.openssl_ok(
            &format!("re-encode tampered {stem}"),
            &[
                "x509",
                "-in",
                &path_str(&out)?,
                "-outform",
                "DER",
                "-out",
                &path_str(&round_trip)?,
            ],
        )?;
        let original = fs::read(&der).with_context(|| format!("reading {}", der.display()))?;
        let reencoded =
            fs::read(&round_trip).with_context(|| format!("reading {}", round_trip.display()))?;
        let differing = original
            .iter()
            .zip(&reencoded)
            .filter(|(a, b)| a != b)
            .count();
        if reencoded.len() != original.len() || differing != 1 {
            bail!(
                "the tampered copy of {} differs in {differing} byte(s) and {} vs {} bytes; expected exactly one flipped byte",
                cert.display(),
                reencoded.len(),
                original.len()
            );
        }
        self.ev.note(format!(
            "{}: byte {} of {} (last byte of the signature value) flipped {before:#04x} -> {after:#04x}; the certificate still parses",
            out.display(),
            original.len(),
            original.len()
        ));
        Ok(out)
    }

    /// `openssl verify` of `cert` under `trust`, with `extra` options
    /// (e.g. `-crl_check`, `-verify_hostname NAME`).
    pub fn verify(&self, cert: &Path, trust: &Trust, extra: &[&str]) -> Result<Verification> {
        let mut args: Vec<String> =
            vec!["verify".into(), "-CAfile".into(), path_str(&trust.anchors)?];
        if let Some(i) = &trust.intermediates {
            args.extend(["-untrusted".into(), path_str(i)?]);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let cert_arg = path_str(cert)?;
        args.push(cert_arg.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = self.openssl("openssl verify", &args)?;
        let output = ran.all_output();
        let said_ok = ran
            .stdout
            .lines()
            .any(|l| l.trim() == format!("{cert_arg}: OK"));
        Ok(Verification {
            cert: cert.to_path_buf(),
            accepted: ran.success && said_ok,
            error: parse_verify_error(&output),
            output,
        })
    }

    /// Revoke `cert` in `ca`'s database.
    pub fn revoke(&self, ca: &Ca, cert: &Path) -> Result<()> {
        self.openssl_ok(
            &format!("{} revokes {}", ca.name, cert.display()),
            &[
                "ca",
                "-config",
                &path_str(&ca.config)?,
                "-revoke",
                &path_str(cert)?,
            ],
        )?;
        Ok(())
    }

    /// A fresh CRL of `ca` (PEM), listing what it revoked so far.
    pub fn crl(&self, ca: &Ca) -> Result<PathBuf> {
        let out = ca.cert.with_file_name("crl.pem");
        self.openssl_ok(
            &format!("{} publishes a CRL", ca.name),
            &[
                "ca",
                "-config",
                &path_str(&ca.config)?,
                "-gencrl",
                "-out",
                &path_str(&out)?,
            ],
        )?;
        Ok(out)
    }
}

/// The `openssl ca` configuration of one CA whose files live in `dir`.
fn ca_config(dir: &Path) -> String {
    format!(
        "# openssl ca configuration of a per-run test CA (cip-iec-fr1-tests)
[ ca ]
default_ca = this_ca

[ this_ca ]
dir = {dir}
database = $dir/index.txt
serial = $dir/serial
crlnumber = $dir/crlnumber
new_certs_dir = $dir/issued
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_days = 1
default_crl_days = 1
policy = any_name
unique_subject = no
copy_extensions = copy
email_in_dn = no

[ any_name ]
commonName = supplied

[ req ]
distinguished_name = req_dn
prompt = no

[ req_dn ]
CN = unused

[ root_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ sub_ca_ext ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ leaf_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

# OpenSSL 3 adds an authorityKeyIdentifier unless it is set to none.
[ leaf_no_akid_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = none
",
        dir = dir.display()
    )
}

/// `error 10 at 0 depth lookup: certificate has expired` → (10, text).
fn parse_verify_error(output: &str) -> Option<(u32, String)> {
    output.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("error ")?;
        let (code, rest) = rest.split_once(' ')?;
        let code = code.parse().ok()?;
        let (_, text) = rest.split_once("lookup:")?;
        Some((code, text.trim().to_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_errors_are_parsed() {
        let out = "CN = leaf\nerror 10 at 0 depth lookup: certificate has expired\nerror x.pem: verification failed\n";
        assert_eq!(
            parse_verify_error(out),
            Some((10, "certificate has expired".into()))
        );
        assert_eq!(parse_verify_error("x.pem: OK\n"), None);
        // The summary line is not an error code.
        assert_eq!(
            parse_verify_error("error x.pem: verification failed\n"),
            None
        );
    }

    #[test]
    fn dates_are_relative_to_now_and_in_openssl_form() {
        assert_eq!(Validity::Current.ca_args(), ["-days", "1"]);
        let expired = Validity::Expired.ca_args();
        assert_eq!(expired[0], "-startdate");
        assert_eq!(expired[1].len(), "20260101000000Z".len());
        assert!(expired[1] < expired[3], "{expired:?}");
        let future = Validity::NotYetValid.ca_args();
        assert!(future[1] > expired[3], "{future:?}");
    }
}
