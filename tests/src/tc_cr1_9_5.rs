//! TC_CR1.9_5 — CR1.9 strength of public key-based authentication: identity mapping.
//!
//! Proves: an SSH user certificate maps to an account only through its
//! principals. Two accounts A and B each get a role principal in the place
//! the image's sshd configuration looks principals up: the system's own
//! `AuthorizedPrincipalsFile` when the image sets one (kept as configured),
//! else a per-account `.ssh/authorized_principals` that the case configures
//! on its private sshd (with `TrustedUserCAKeys` of the run's SSH CA). A's
//! certificate logs in as A, B's as B, and A's certificate is refused as B
//! (sshd: no authorized principal). X.509 the same way: a certificate for
//! A verifies for A's host name and e-mail address and is refused for B's.
//! Negative control: profile `shared-principals-file`
//! (`AuthorizedPrincipalsFile /etc/ssh/all-principals`: one file listing
//! every principal, shared by all accounts).

use harness::pki::{LeafSpec, Pki, Timings};
use harness::ssh::ssh_key;
use harness::ssh_ca::{system_principals_lookup, PrincipalGrants, PrincipalsLookup, SshCa};
use harness::{Case, Evidence, PrivateSshd, TestUser};
use std::path::Path;

pub const CASE: Case = Case::met(
    "TC_CR1.9_5",
    "CR1.9",
    "Strength of public key-based authentication: identity mapping",
    "an SSH user certificate logs in only as the account its principal is mapped to; an X.509 certificate verifies only for its own subject names",
    run,
);

/// Where the case puts principals when the image configures no lookup.
const OWN_PRINCIPALS_FILE: &str = ".ssh/authorized_principals";

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let times = Timings::new(ev);
    let ca = SshCa::new(ev, &times)?;
    let a = TestUser::create(ev)?;
    let b = TestUser::create(ev)?;

    ev.step("where does the image's sshd look up the principals of an account?");
    let lookup = system_principals_lookup(ev, a.name())?;
    anyhow::ensure!(
        system_principals_lookup(ev, b.name())? == lookup,
        "the system's sshd maps principals differently for {} and {} (Match blocks); not covered by this case",
        a.name(),
        b.name()
    );
    let mut sshd = PrivateSshd::builder()
        .option("AuthenticationMethods", "publickey")
        .option("TrustedUserCAKeys", ca.public_key().display().to_string());
    let template = match &lookup {
        PrincipalsLookup::File(file) => {
            ev.note(format!(
                "the image sets AuthorizedPrincipalsFile {file}: the private sshd keeps it, and the case grants principals there"
            ));
            file.clone()
        }
        PrincipalsLookup::AccountName => {
            ev.note(format!(
                "the image sets no principals lookup: the private sshd reads each account's {OWN_PRINCIPALS_FILE}"
            ));
            sshd = sshd.option("AuthorizedPrincipalsFile", OWN_PRINCIPALS_FILE);
            OWN_PRINCIPALS_FILE.to_owned()
        }
        PrincipalsLookup::Command(command) => {
            anyhow::bail!(
                "the image maps certificate principals with AuthorizedPrincipalsCommand {command}; \
                 the case cannot grant principals to its own accounts through it, so the mapping is not shown: check that command's mapping"
            );
        }
    };

    ev.step("each account gets its own role principal; the CA certifies a key for each role");
    let role_a = format!("role-{}", a.name());
    let role_b = format!("role-{}", b.name());
    let mut grants = PrincipalGrants::new(ev);
    grants.grant(&template, &a, &role_a)?;
    grants.grant(&template, &b, &role_b)?;
    let key_a = ca.key("key-a")?;
    let key_b = ca.key("key-b")?;
    let cert_a = ca.certify(
        &key_a,
        "cert-a",
        &format!("fr1 {}", a.name()),
        &[&role_a],
        harness::pki::Validity::Current,
    )?;
    let cert_b = ca.certify(
        &key_b,
        "cert-b",
        &format!("fr1 {}", b.name()),
        &[&role_b],
        harness::pki::Validity::Current,
    )?;
    let sshd = sshd.start(ev)?;
    let login = |user: &TestUser, key: &Path, cert: &Path| {
        let opt = format!("CertificateFile={}", cert.display());
        ssh_key(ev, &sshd, user.name(), key, &["-o", &opt])
    };

    login(&a, &key_a.private, &cert_a)?.assert_shell_as(a.name())?;
    ev.ok(format!("certificate for {role_a}: a shell as {}", a.name()));
    login(&b, &key_b.private, &cert_b)?.assert_shell_as(b.name())?;
    ev.ok(format!("certificate for {role_b}: a shell as {}", b.name()));

    ev.step(format!(
        "refusal: A's certificate ({role_a}) used to log in as B"
    ));
    let crossed = login(&b, &key_a.private, &cert_a)?;
    crossed.assert_refused().map_err(|e| {
        e.context(format!(
            "a certificate for principal {role_a} logged in as {}: principals do not map certificates to accounts",
            b.name()
        ))
    })?;
    anyhow::ensure!(
        sshd.log()
            .contains("Certificate does not contain an authorized principal"),
        "the certificate was refused as {}, but sshd did not log a principal mismatch",
        b.name()
    );
    ev.ok(format!(
        "A's certificate is refused as {} (sshd: Certificate does not contain an authorized principal)",
        b.name()
    ));
    drop(sshd);
    drop(grants);

    ev.step("X.509: a certificate for A verifies for A's names only");
    let pki = Pki::new(ev, &times)?;
    let host_a = format!("{}.fr1.test", a.name());
    let host_b = format!("{}.fr1.test", b.name());
    let mail_a = format!("{}@fr1.test", a.name());
    let mail_b = format!("{}@fr1.test", b.name());
    let leaf = pki.issue(
        pki.intermediate(),
        &LeafSpec::new(a.name())
            .alt_name(format!("DNS:{host_a}"))
            .alt_name(format!("email:{mail_a}")),
    )?;
    let chain = pki.chain();
    pki.verify(&leaf.cert, &chain, &["-verify_hostname", &host_a])?
        .assert_accepted("A's certificate for A's host name")?;
    pki.verify(&leaf.cert, &chain, &["-verify_email", &mail_a])?
        .assert_accepted("A's certificate for A's e-mail address")?;
    ev.ok(format!(
        "A's certificate verifies for {host_a} and {mail_a}"
    ));
    pki.verify(&leaf.cert, &chain, &["-verify_hostname", &host_b])?
        .assert_refused_with("A's certificate for B's host name", &[62])?;
    pki.verify(&leaf.cert, &chain, &["-verify_email", &mail_b])?
        .assert_refused_with("A's certificate for B's e-mail address", &[63])?;
    ev.ok(format!(
        "A's certificate is refused for {host_b} (error 62) and {mail_b} (error 63)"
    ));
    Ok(())
}
