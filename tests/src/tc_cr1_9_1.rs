//! TC_CR1.9_1 — CR1.9 strength of public key-based authentication: signature validity.
//!
//! Proves: a certificate issued by the run's CA verifies (`openssl verify`:
//! OK); the same certificate with one flipped signature byte is refused
//! (error 7, certificate signature failure); an expired and a
//! not-yet-valid certificate are refused (errors 10 and 9). sshd, trusting
//! the run's SSH user CA, gives a shell for a current user certificate and
//! refuses an expired and a not-yet-valid one, saying so in its log.
//! Negative control: in-test artefact mutation — the tampered, expired and
//! not-yet-valid artefacts are the refusal halves (platform checks; no
//! image setting is involved).

use harness::actors::pki::{LeafSpec, Pki, Timings, Validity};
use harness::actors::ssh_ca::SshCa;
use harness::flows::ssh::ssh_key;
use harness::{Case, Control, Evidence, PrivateSshd, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.9_1",
    "CR1.9",
    "Strength of public key-based authentication: signature validity",
    "a CA-signed certificate verifies; a flipped signature byte, an expired and a not-yet-valid certificate are refused by OpenSSL; sshd refuses expired and not-yet-valid SSH user certificates",
    run,
)
.fails_under(&[
    Control::InTest {
        reason: "a tampered, an expired and a not-yet-valid certificate (X.509 and SSH) must be refused: platform checks on mutated artefacts, no image setting involved",
    },
]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let times = Timings::new(ev);
    let pki = Pki::new(ev, &times)?;
    x509_signature_and_validity(ev, &pki)?;
    ssh_certificate_validity(ev, &times)
}

/// OpenSSL accepts the CA-signed certificate and refuses it tampered,
/// expired and not yet valid.
fn x509_signature_and_validity(ev: &Evidence, pki: &Pki) -> anyhow::Result<()> {
    let chain = pki.chain();
    let ca = pki.intermediate();

    ev.step("X.509: a certificate signed by the CA, and the same with one signature byte flipped");
    let valid = pki.issue(ca, &LeafSpec::new("valid"))?;
    let check = pki.verify(&valid.cert, &chain, &[])?;
    check.assert_accepted("the CA-signed certificate")?;
    ev.ok("the CA-signed certificate verifies: OK");
    let tampered = pki.tampered(&valid.cert)?;
    pki.verify(&tampered, &chain, &[])?
        .assert_refused_with("the certificate with a flipped signature byte", &[7])?;
    ev.ok("one flipped signature byte: refused (error 7, certificate signature failure)");

    ev.step("X.509: validity period");
    let expired = pki.issue(ca, &LeafSpec::new("expired").validity(Validity::Expired))?;
    pki.verify(&expired.cert, &chain, &[])?
        .assert_refused_with("the expired certificate", &[10])?;
    ev.ok("expired certificate: refused (error 10, certificate has expired)");
    let future = pki.issue(
        ca,
        &LeafSpec::new("not-yet-valid").validity(Validity::NotYetValid),
    )?;
    pki.verify(&future.cert, &chain, &[])?
        .assert_refused_with("the not-yet-valid certificate", &[9])?;
    ev.ok("not-yet-valid certificate: refused (error 9, certificate is not yet valid)");
    Ok(())
}

/// sshd gives a shell for the current user certificate and refuses the
/// expired and the not-yet-valid one, saying why in its log.
fn ssh_certificate_validity(ev: &Evidence, times: &Timings) -> anyhow::Result<()> {
    ev.step("SSH: user certificates of the run's CA, current, expired and not yet valid");
    let ssh_ca = SshCa::new(ev, times)?;
    let user = TestUser::create(ev)?;
    let key = ssh_ca.key("user-key")?;
    let principal = [user.name()];
    let current = ssh_ca.certify(
        &key,
        "current",
        "fr1-current",
        &principal,
        Validity::Current,
    )?;
    let expired = ssh_ca.certify(
        &key,
        "expired",
        "fr1-expired",
        &principal,
        Validity::Expired,
    )?;
    let future = ssh_ca.certify(
        &key,
        "not-yet-valid",
        "fr1-future",
        &principal,
        Validity::NotYetValid,
    )?;
    // The account has no authorized_keys: only a certificate can let it
    // in. Principals are matched against the account name here (this case
    // is about validity, TC_CR1.9_5 about the mapping). Only the file can
    // be switched off this way: sshd takes "none" literally as a command.
    let sshd = PrivateSshd::builder()
        .option("AuthenticationMethods", "publickey")
        .option(
            "TrustedUserCAKeys",
            ssh_ca.public_key().display().to_string(),
        )
        .option("AuthorizedPrincipalsFile", "none")
        .start(ev)?;

    let with_cert = |cert: &std::path::Path| {
        let opt = format!("CertificateFile={}", cert.display());
        ssh_key(ev, &sshd, user.name(), &key.private, &["-o", &opt])
    };
    with_cert(&current)?.assert_shell_as(user.name())?;
    ev.ok("current SSH user certificate: a shell as the user");
    with_cert(&expired)?.assert_refused()?;
    anyhow::ensure!(
        sshd.log().contains("Certificate invalid: expired"),
        "the expired certificate was refused, but sshd did not log it as expired"
    );
    ev.ok("expired SSH user certificate: refused (sshd: Certificate invalid: expired)");
    with_cert(&future)?.assert_refused()?;
    anyhow::ensure!(
        sshd.log().contains("Certificate invalid: not yet valid"),
        "the not-yet-valid certificate was refused, but sshd did not log it as not yet valid"
    );
    ev.ok("not-yet-valid SSH user certificate: refused (sshd: Certificate invalid: not yet valid)");
    Ok(())
}
