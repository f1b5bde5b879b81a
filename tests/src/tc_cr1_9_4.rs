//! TC_CR1.9_4 — CR1.9 strength of public key-based authentication: private key control.
//!
//! Proves: a private key that a test user creates for itself with
//! `ssh-keygen` can be used by that user, and another unprivileged test user
//! cannot read it (tried as that user; its mode and owner are noted, the
//! refusal is what counts); proof of possession: a random challenge signed
//! with the key verifies with the public key of the certificate the run's CA
//! issued for it, and a signature made with another key does not. The
//! image's own private keys (sshd's `HostKey` files, every file under
//! /etc/ssl/private, and every file a walk of the device finds holding a
//! private key in any encoding) cannot be opened by an unprivileged user,
//! nor by a member of a group their mode or ACL grants: `ssl-cert` (for
//! /etc/ssl/private) when it has members that can log in, any other group
//! whether or not it has members; no ACL entry grants one to a person.
//! Negative controls: profile `host-key-world-readable`
//! (`chmod 644 /etc/ssh/ssh_host_ed25519_key`); profile
//! `tls-key-readable-by-operators` (a product TLS key root:operators 0640,
//! the human account `operator` in that group); profile
//! `host-key-acl-to-operator` (an ACL entry lets the human account
//! `operator` read an sshd host key whose mode looks closed); profile
//! `device-key-in-opt-readable` (a product key in DER form under /opt,
//! mode 644); profile `pkcs12-bundle-group-readable` (a PKCS#12 bundle
//! under /etc readable by a group with no member today).

use anyhow::Context;
use harness::actors::pki::{Pki, Timings};
use harness::flows::secret_files::{check_stores, device_walk, private_keys, record_walk};
use harness::runtime::case::Findings;
use harness::runtime::command::{run_ok, Ran};
use harness::runtime::password::random_token;
use harness::{Case, Control, Evidence, TestUser};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub const CASE: Case = Case::met(
    "TC_CR1.9_4",
    "CR1.9",
    "Strength of public key-based authentication: private key control",
    "a user's private key is usable by the user and unreadable to another user; a signed challenge proves possession; the image's private keys, wherever the device walk finds them, are closed to unprivileged users and to groups other than the one made for them or with human members",
    run,
)
.fails_under(&[
    Control::Profile("host-key-world-readable"),
    Control::Profile("tls-key-readable-by-operators"),
    Control::Profile("host-key-acl-to-operator"),
    Control::Profile("device-key-in-opt-readable"),
    Control::Profile("pkcs12-bundle-group-readable"),
])
// The device walked before any case creates a key of its own.
.before_run(record_walk);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let times = Timings::new(ev);
    let owner = TestUser::create(ev)?;
    let other = TestUser::create(ev)?;

    ev.step("the owner creates a key pair for itself with ssh-keygen (run as the owner)");
    let key = create_key_as(ev, &times, &owner)?;
    note_key_file(ev, &key, &owner)?;
    let derived = run_ok(
        ev,
        owner.command("ssh-keygen").args(["-y", "-f"]).arg(&key),
        None,
    )?;
    let published = read_text(&key.with_extension("pub"))?;
    anyhow::ensure!(
        same_public_key(&derived.stdout, &published),
        "the owner cannot use its own key (ssh-keygen -y gave another public key)"
    );
    ev.ok("the owner can use its key (ssh-keygen -y gives its public key)");

    ev.step("another unprivileged user tries to read the owner's key");
    readable_control(ev, &other)?;
    assert_unreadable(&other, &key)?;
    ev.ok(format!(
        "{} cannot read {} (Permission denied)",
        other.name(),
        key.display()
    ));

    ev.step("proof of possession: the CA certifies the key; the owner signs a random challenge");
    let pki = Pki::new(ev, &times)?;
    proof_of_possession(ev, &pki, &times, &owner, &other)?;
    image_keys_closed(ev, &other)
}

/// What ssh-keygen chose is a note: the refusal, tried as another user, is
/// what shows the key is under control.
fn note_key_file(ev: &Evidence, key: &Path, owner: &TestUser) -> anyhow::Result<()> {
    let meta = std::fs::metadata(key).with_context(|| format!("reading {}", key.display()))?;
    ev.note(format!(
        "{}: mode {:o}, uid {}, gid {} (created by {}, uid {})",
        key.display(),
        meta.mode() & 0o7777,
        meta.uid(),
        meta.gid(),
        owner.name(),
        owner.uid()
    ));
    Ok(())
}

/// The CA of `pki` certifies the owner's key; a random challenge signed with it
/// verifies with the certificate's public key, one signed with the other
/// user's key does not.
fn proof_of_possession(
    ev: &Evidence,
    pki: &Pki,
    times: &Timings,
    owner: &TestUser,
    other: &TestUser,
) -> anyhow::Result<()> {
    let certified_key = certify_key_of(ev, pki, owner)?;
    let challenge = format!("fr1-proof-of-possession {}\n", random_token(32)?);
    let challenge_file = pki.write_file("challenge", challenge.as_bytes())?;
    let signature = sign_as(ev, pki, owner, ".ssh/id_ecdsa", &challenge, "owner")?;
    let verified = verify_signature(pki, &certified_key, &signature, &challenge_file)?;
    anyhow::ensure!(
        verified.success && verified.stdout.contains("Verified OK"),
        "the owner's signature of the challenge does not verify with its certificate: {}",
        verified.all_output().trim()
    );
    ev.ok("the challenge signed with the owner's key verifies with the certificate's public key");

    ev.step("refusal: the same challenge signed with another user's key");
    let other_key = create_key_as(ev, times, other)?;
    anyhow::ensure!(other_key.exists(), "the other user's key was not created");
    let forged = sign_as(ev, pki, other, ".ssh/id_ecdsa", &challenge, "other")?;
    let refused = verify_signature(pki, &certified_key, &forged, &challenge_file)?;
    anyhow::ensure!(
        !refused.success && refused.stdout.contains("Verification failure"),
        "a signature made with another key verified with the owner's certificate: {}",
        refused.all_output().trim()
    );
    ev.ok("a signature made with another key does not verify with the owner's certificate");
    Ok(())
}

/// The owner requests a certificate for its key (`openssl req`, run as
/// the owner); the intermediate CA issues it. The public key the
/// certificate holds, in the PKI directory.
fn certify_key_of(ev: &Evidence, pki: &Pki, owner: &TestUser) -> anyhow::Result<PathBuf> {
    run_ok(
        ev,
        owner.command("openssl").args([
            "req",
            "-new",
            "-key",
            ".ssh/id_ecdsa",
            "-subj",
            &format!("/CN={}", owner.name()),
            "-out",
            "fr1-pop.csr",
        ]),
        None,
    )?;
    let cert = pki.sign_request(
        pki.intermediate(),
        &owner.home().join("fr1-pop.csr"),
        "owner-cert",
    )?;
    let certified_key = pki.dir().join("owner-cert-pubkey.pem");
    pki.openssl(
        "public key of the owner's certificate",
        &[
            "x509",
            "-in",
            &cert.display().to_string(),
            "-pubkey",
            "-noout",
            "-out",
            &certified_key.display().to_string(),
        ],
    )?;
    Ok(certified_key)
}

/// The image's own private keys, tried as `other` and as a member of each
/// group granted access; /etc/ssl/private cannot be listed.
fn image_keys_closed(ev: &Evidence, other: &TestUser) -> anyhow::Result<()> {
    ev.step(format!(
        "the image's own private keys, tried as {} (in no extra group) and as a member of each group granted access",
        other.name()
    ));
    let mut findings = Findings::default();
    match private_keys(ev) {
        Ok(image_keys) => {
            ev.note(device_walk().summary());
            ev.note(format!(
                "private keys found (sshd HostKey files, /etc/ssl/private, the walk): {}",
                if image_keys.is_empty() {
                    "none".to_owned()
                } else {
                    image_keys
                        .iter()
                        .map(|key| format!("{} ({})", key.path.display(), key.holds))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
            check_stores(ev, other, &image_keys, &mut findings);
        }
        Err(e) => findings.step(Err(e)),
    }
    if Path::new("/etc/ssl/private").is_dir() {
        let listed = other.try_read(Path::new("/etc/ssl/private"));
        findings.step(listed.map(|ran| {
            if ran.success {
                vec![format!("{} can list /etc/ssl/private", other.name())]
            } else {
                ev.ok(format!("{} cannot list /etc/ssl/private", other.name()));
                Vec::new()
            }
        }));
    }
    findings.verdict("the image's private keys are exposed")?;
    ev.ok(format!(
        "the image's private keys are closed to {} and to groups with human members",
        other.name()
    ));
    Ok(())
}

/// A text file, the error naming it.
fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `ssh-keygen -t ecdsa -m PEM` run as `user`, into `~/.ssh/id_ecdsa`
/// (PEM, so OpenSSL can use the same key for the certificate request).
fn create_key_as(ev: &Evidence, times: &Timings, user: &TestUser) -> anyhow::Result<PathBuf> {
    run_ok(
        ev,
        user.command("mkdir").args(["-p", "-m", "700", ".ssh"]),
        None,
    )?;
    times.time(
        &format!("ssh-keygen as {} (ECDSA P-256)", user.name()),
        || {
            run_ok(
                ev,
                user.command("ssh-keygen").args([
                    "-q",
                    "-t",
                    "ecdsa",
                    "-b",
                    "256",
                    "-m",
                    "PEM",
                    "-N",
                    "",
                    "-C",
                    "fr1-private-key-control",
                    "-f",
                    ".ssh/id_ecdsa",
                ]),
                None,
            )
        },
    )?;
    Ok(user.home().join(".ssh/id_ecdsa"))
}

/// `user` signs `challenge` (given on stdin) with its key; the signature
/// file is copied into the PKI directory for root to verify.
fn sign_as(
    ev: &Evidence,
    pki: &Pki,
    user: &TestUser,
    key: &str,
    challenge: &str,
    label: &str,
) -> anyhow::Result<PathBuf> {
    let started = std::time::Instant::now();
    run_ok(
        ev,
        user.command("openssl").args([
            "dgst",
            "-sha256",
            "-sign",
            key,
            "-out",
            "fr1-challenge.sig",
        ]),
        Some(challenge),
    )?;
    pki.timings().record(
        &format!("sign challenge as {}", user.name()),
        started.elapsed(),
    );
    let signed = user.home().join("fr1-challenge.sig");
    let signature =
        std::fs::read(&signed).with_context(|| format!("reading {}", signed.display()))?;
    pki.write_file(&format!("challenge-{label}.sig"), &signature)
}

fn verify_signature(
    pki: &Pki,
    public_key: &Path,
    signature: &Path,
    data: &Path,
) -> anyhow::Result<Ran> {
    pki.openssl(
        "verify challenge signature",
        &[
            "dgst",
            "-sha256",
            "-verify",
            &public_key.display().to_string(),
            "-signature",
            &signature.display().to_string(),
            &data.display().to_string(),
        ],
    )
}

/// The "tried as that user" attempts are real: the same user reads a
/// world-readable file fine.
fn readable_control(ev: &Evidence, user: &TestUser) -> anyhow::Result<()> {
    let control = ["/etc/ssh/ssh_host_ed25519_key.pub", "/etc/passwd"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("/etc/passwd");
    let ran = user.try_read(Path::new(control))?;
    anyhow::ensure!(
        ran.success,
        "{} cannot even read the world-readable {control}: the read attempts prove nothing",
        user.name()
    );
    ev.ok(format!(
        "control: {} reads the world-readable {control}",
        user.name()
    ));
    Ok(())
}

/// Reading `path` as `user` must fail with "Permission denied". The data
/// goes to /dev/null: a key that turns out readable is not copied into the
/// evidence.
fn assert_unreadable(user: &TestUser, path: &Path) -> anyhow::Result<()> {
    let ran = user.try_read(path)?;
    anyhow::ensure!(
        !ran.success,
        "{} is readable by the unprivileged user {}",
        path.display(),
        user.name()
    );
    anyhow::ensure!(
        ran.stderr.contains("Permission denied"),
        "reading {} as {} failed, but not for lack of permission: {}",
        path.display(),
        user.name(),
        ran.stderr.trim()
    );
    Ok(())
}

/// Two public-key lines name the same key (type and base64 blob).
fn same_public_key(a: &str, b: &str) -> bool {
    let fields = |s: &str| {
        s.split_whitespace()
            .take(2)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (fa, fb) = (fields(a), fields(b));
    fa.len() == 2 && fa == fb
}
