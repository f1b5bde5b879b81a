//! TC_CR1.9_3 — CR1.9 strength of public key-based authentication: revocation.
//!
//! Proves: after the intermediate CA revokes a certificate, `openssl verify
//! -crl_check` with its CRL refuses it (error 23) and still accepts an
//! unrevoked one (and without any CRL refuses to decide, error 3: the check
//! really consults the CRL); the CA's OCSP responder (`openssl ocsp`,
//! private loopback) answers `revoked` for it and `good` for the other,
//! with a response signature the client verified; sshd with a `RevokedKeys`
//! list refuses a revoked key that is still in `authorized_keys`, and gives
//! a shell for an unrevoked one.
//! Negative control: in-test artefact mutation — the revoked certificate
//! and the revoked SSH key are the refusal halves.

use harness::actors::pki::{LeafSpec, Pki, Timings};
use harness::actors::ssh_ca::SshCa;
use harness::flows::ssh::ssh_key;
use harness::{Case, Control, Evidence, PrivateSshd, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.9_3",
    "CR1.9",
    "Strength of public key-based authentication: revocation",
    "a revoked certificate is refused with the CA's CRL and reported revoked by its OCSP responder; sshd refuses a key listed in RevokedKeys",
    run,
)
.fails_under(&[
    Control::InTest {
        reason: "a revoked certificate must be refused through the CRL and the OCSP responder, and a revoked SSH key by sshd's RevokedKeys",
    },
]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let times = Timings::new(ev);
    let pki = Pki::new(ev, &times)?;
    let ca = pki.intermediate();
    let chain = pki.chain();

    ev.step("the intermediate CA issues two certificates and revokes one");
    let kept = pki.issue(ca, &LeafSpec::new("not-revoked"))?;
    let revoked = pki.issue(ca, &LeafSpec::new("revoked"))?;
    pki.revoke(ca, &revoked.cert)?;
    let crl = pki.crl(ca)?;
    let crl_arg = crl.display().to_string();
    let with_crl = ["-crl_check", "-CRLfile", crl_arg.as_str()];

    ev.step("CRL: openssl verify -crl_check");
    pki.verify(&kept.cert, &chain, &with_crl)?
        .assert_accepted("the unrevoked certificate with the CRL")?;
    ev.ok("unrevoked certificate with the CRL: OK");
    pki.verify(&revoked.cert, &chain, &with_crl)?
        .assert_refused_with("the revoked certificate with the CRL", &[23])?;
    ev.ok("revoked certificate with the CRL: refused (error 23, certificate revoked)");
    pki.verify(&kept.cert, &chain, &["-crl_check"])?
        .assert_refused_with("-crl_check without any CRL", &[3])?;
    ev.ok("-crl_check without a CRL refuses to decide (error 3): the verdicts above came from the CRL");

    ev.step("OCSP: the intermediate CA's responder on a private loopback");
    let mut responder = pki.ocsp_responder(ca)?;
    let good = pki.ocsp_status(&mut responder, ca, &kept.cert)?;
    anyhow::ensure!(
        good.status == "good" && good.response_verified,
        "OCSP on the unrevoked certificate: expected a verified `good`, got {:?} (verified: {}): {}",
        good.status,
        good.response_verified,
        good.output.trim()
    );
    ev.ok("OCSP: unrevoked certificate good, response signature verified");
    let bad = pki.ocsp_status(&mut responder, ca, &revoked.cert)?;
    anyhow::ensure!(
        bad.status == "revoked" && bad.response_verified,
        "OCSP on the revoked certificate: expected a verified `revoked`, got {:?} (verified: {}): {}",
        bad.status,
        bad.response_verified,
        bad.output.trim()
    );
    ev.ok("OCSP: revoked certificate revoked, response signature verified");
    drop(responder);

    ev.step("SSH: two keys in authorized_keys, one of them in sshd's RevokedKeys list");
    let keys = SshCa::new(ev, &times)?;
    let user = TestUser::create(ev)?;
    let good_key = keys.key("kept-key")?;
    let revoked_key = keys.key("revoked-key")?;
    user.write_home_file(
        ".ssh/authorized_keys",
        &format!(
            "{}\n{}\n",
            good_key.public_line()?,
            revoked_key.public_line()?
        ),
        0o600,
    )?;
    let krl = keys.revocation_list(&[&revoked_key], &good_key)?;
    let sshd = PrivateSshd::builder()
        .option("AuthenticationMethods", "publickey")
        .option("RevokedKeys", krl.display().to_string())
        .start(ev)?;
    ssh_key(ev, &sshd, user.name(), &good_key.private, &[])?.assert_shell_as(user.name())?;
    ev.ok("unrevoked key: a shell as the user");
    ssh_key(ev, &sshd, user.name(), &revoked_key.private, &[])?.assert_refused()?;
    anyhow::ensure!(
        sshd.log().contains("revoked by file"),
        "the revoked key was refused, but sshd did not log it as revoked"
    );
    ev.ok("revoked key, although in authorized_keys: refused (sshd: key revoked by file)");
    Ok(())
}
