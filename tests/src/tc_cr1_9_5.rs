//! TC_CR1.9_5 — CR1.9 strength of public key-based authentication: identity mapping.
//!
//! Proves: an SSH user certificate maps to an account only through its
//! principals. Two accounts A and B each get a role principal in the place
//! the image's sshd configuration looks principals up: the system's own
//! `AuthorizedPrincipalsFile` when the image sets one (kept as configured),
//! else a per-account `.ssh/authorized_principals` that the case configures
//! on its private sshd (with `TrustedUserCAKeys` of the run's SSH CA). A's
//! certificate logs in as A, B's as B, and A's certificate is refused as B
//! (sshd: no authorized principal). Where the image maps principals with
//! an `AuthorizedPrincipalsCommand`, the case runs it as sshd would (as its
//! `AuthorizedPrincipalsCommandUser`, tokens expanded) for every account a
//! person can log in to and for A and B: no principal may open two
//! accounts, and A's and B's certificates carry what it gives them.
//! X.509 the same way: a certificate for A verifies for A's host name and
//! e-mail address and is refused for B's. A violation found is reported
//! even when a later step cannot run.
//! Negative controls: profile `shared-principals-file`
//! (`AuthorizedPrincipalsFile /etc/ssh/all-principals`: one file listing
//! every principal, shared by all accounts); profile
//! `principals-command-shared` (an `AuthorizedPrincipalsCommand` that gives
//! every account a fleet-wide role principal besides its own name).

use harness::actors::pki::{LeafSpec, Pki, Timings};
use harness::actors::principals_command::{shared_principals, CertTokens, PrincipalsCommand};
use harness::actors::ssh_ca::{
    system_principals_lookup, PrincipalGrants, PrincipalsLookup, SshCa, SshKey,
};
use harness::actors::sshd::PrivateSshdBuilder;
use harness::facts::inventory;
use harness::flows::ssh::ssh_key;
use harness::runtime::case::Findings;
use harness::{Case, Control, Evidence, PrivateSshd, TestUser};
use std::path::Path;

pub const CASE: Case = Case::met(
    "TC_CR1.9_5",
    "CR1.9",
    "Strength of public key-based authentication: identity mapping",
    "an SSH user certificate logs in only as the account its principal is mapped to; an X.509 certificate verifies only for its own subject names",
    run,
)
.fails_under(&[
    Control::Profile("shared-principals-file"),
    Control::Profile("principals-command-shared"),
]);

/// Where the case puts principals when the image configures no lookup.
const OWN_PRINCIPALS_FILE: &str = ".ssh/authorized_principals";

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let times = Timings::new(ev);
    let ca = SshCa::new(ev, &times)?;
    let a = TestUser::create(ev)?;
    let b = TestUser::create(ev)?;
    let mut found = Findings::default();

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
    let key_a = ca.key("key-a")?;
    let key_b = ca.key("key-b")?;
    let mut grants = PrincipalGrants::new(ev);
    let (principals_a, principals_b) = match &lookup {
        PrincipalsLookup::File(file) => {
            ev.note(format!(
                "the image sets AuthorizedPrincipalsFile {file}: the private sshd keeps it, and the case grants principals there"
            ));
            grant_roles(&mut grants, file, &a, &b)?
        }
        PrincipalsLookup::AccountName => {
            ev.note(format!(
                "the image sets no principals lookup: the private sshd reads each account's {OWN_PRINCIPALS_FILE}"
            ));
            sshd = sshd.option("AuthorizedPrincipalsFile", OWN_PRINCIPALS_FILE);
            grant_roles(&mut grants, OWN_PRINCIPALS_FILE, &a, &b)?
        }
        PrincipalsLookup::Command(command) => {
            ev.note(format!(
                "the image maps principals with AuthorizedPrincipalsCommand {} (run as {}): the private sshd keeps it",
                command.command, command.user
            ));
            sshd = sshd
                .option("AuthorizedPrincipalsCommand", &command.command)
                .option("AuthorizedPrincipalsCommandUser", &command.user);
            match command_mapping(ev, &ca, &key_a, command, &a, &b, &mut found) {
                Ok(both) => both,
                Err(e) => {
                    found.step(Err(e));
                    return found.verdict("certificate principals open more than one account");
                }
            }
        }
    };

    let a = Holder {
        user: &a,
        key: &key_a,
        principals: &principals_a,
    };
    let b = Holder {
        user: &b,
        key: &key_b,
        principals: &principals_b,
    };
    found.step(certificates_log_in(ev, &ca, sshd, &a, &b));
    drop(grants);
    found.step(x509_mapping(ev, &times, a.user, b.user).map(|()| vec![]));
    found.verdict("certificates open accounts they are not mapped to")
}

/// An account, its key and the principals its certificate carries.
struct Holder<'a> {
    user: &'a TestUser,
    key: &'a SshKey,
    principals: &'a [String],
}

/// A's certificate logs in as A, B's as B; A's is refused as B. The
/// violation found, if A's opens B.
fn certificates_log_in(
    ev: &Evidence,
    ca: &SshCa,
    sshd: PrivateSshdBuilder,
    a: &Holder,
    b: &Holder,
) -> anyhow::Result<Vec<String>> {
    ev.step(
        "the CA certifies a key for each account's principals; each logs in as its own account",
    );
    let cert_a = certify(ca, a.key, "cert-a", a.user, a.principals)?;
    let cert_b = certify(ca, b.key, "cert-b", b.user, b.principals)?;
    let sshd = sshd.start(ev)?;
    let login = |user: &TestUser, key: &Path, cert: &Path| {
        let opt = format!("CertificateFile={}", cert.display());
        ssh_key(ev, &sshd, user.name(), key, &["-o", &opt])
    };
    login(a.user, &a.key.private, &cert_a)?.assert_shell_as(a.user.name())?;
    ev.ok(format!(
        "certificate for {}: a shell as {}",
        a.principals.join(", "),
        a.user.name()
    ));
    login(b.user, &b.key.private, &cert_b)?.assert_shell_as(b.user.name())?;
    ev.ok(format!(
        "certificate for {}: a shell as {}",
        b.principals.join(", "),
        b.user.name()
    ));

    ev.step("refusal: A's certificate used to log in as B");
    let crossed = login(b.user, &a.key.private, &cert_a)?;
    if crossed.assert_refused().is_err() {
        return Ok(vec![format!(
            "a certificate for {} (A's principals) logged in as {}: principals do not map certificates to one account",
            a.principals.join(", "),
            b.user.name()
        )]);
    }
    anyhow::ensure!(
        sshd.log()
            .contains("Certificate does not contain an authorized principal"),
        "the certificate was refused as {}, but sshd did not log a principal mismatch",
        b.user.name()
    );
    ev.ok(format!(
        "A's certificate is refused as {} (sshd: Certificate does not contain an authorized principal)",
        b.user.name()
    ));
    Ok(vec![])
}

/// Each account gets its own role principal in the principals file
/// `template` (sshd's tokens expanded per account).
fn grant_roles(
    grants: &mut PrincipalGrants,
    template: &str,
    a: &TestUser,
    b: &TestUser,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let role_a = format!("role-{}", a.name());
    let role_b = format!("role-{}", b.name());
    grants.grant(template, a, &role_a)?;
    grants.grant(template, b, &role_b)?;
    Ok((vec![role_a], vec![role_b]))
}

/// The accounts a certificate could open: every account with a login
/// shell, whatever its UID or NSS source and its password's state (a
/// certificate needs none), but the suite's own other than A and B.
fn certificate_logins(
    ev: &Evidence,
    a: &TestUser,
    b: &TestUser,
) -> anyhow::Result<Vec<nix::unistd::User>> {
    let mut out = Vec::new();
    for account in inventory::read(ev)? {
        let ours = account.name == a.name() || account.name == b.name();
        if !account.has_login_shell() || (account.is_the_suites() && !ours) {
            continue;
        }
        if let Some(user) = nix::unistd::User::from_name(&account.name)? {
            out.push(user);
        }
    }
    Ok(out)
}

/// The image's own AuthorizedPrincipalsCommand, run as sshd runs it for
/// every account a person can log in to and for A and B: a principal it
/// gives to two accounts is a violation; the principals it gives A and B
/// are the ones their certificates carry.
fn command_mapping(
    ev: &Evidence,
    ca: &SshCa,
    key: &SshKey,
    command: &PrincipalsCommand,
    a: &TestUser,
    b: &TestUser,
    found: &mut Findings,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    ev.step("run the AuthorizedPrincipalsCommand for every account with a login shell (any UID, any NSS source), as sshd would");
    let probe = certify(ca, key, "probe", a, &["fr1-probe".to_owned()])?;
    let tokens = CertTokens::read(ev, &probe, ca.public_key())?;
    let mut mapping = Vec::new();
    for account in certificate_logins(ev, a, b)? {
        let principals = command.principals_for(ev, &account, &tokens)?;
        ev.note(format!(
            "{}: {}",
            account.name,
            if principals.is_empty() {
                "no principal".to_owned()
            } else {
                principals.join(", ")
            }
        ));
        mapping.push((account.name, principals));
    }
    for (principal, owners) in shared_principals(&mapping) {
        found.violation(format!(
            "principal {principal} opens the accounts {}",
            owners.join(", ")
        ));
    }
    let of = |user: &TestUser| {
        mapping
            .iter()
            .find(|(name, _)| name == user.name())
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    };
    let (pa, pb) = (of(a), of(b));
    anyhow::ensure!(
        !pa.is_empty() && !pb.is_empty(),
        "the AuthorizedPrincipalsCommand maps no principal to the fresh accounts {} and {}, so no certificate can be shown to open exactly its own account",
        a.name(),
        b.name()
    );
    Ok((pa, pb))
}

fn certify(
    ca: &SshCa,
    key: &SshKey,
    label: &str,
    user: &TestUser,
    principals: &[String],
) -> anyhow::Result<std::path::PathBuf> {
    let principals: Vec<&str> = principals.iter().map(String::as_str).collect();
    ca.certify(
        key,
        label,
        &format!("fr1 {}", user.name()),
        &principals,
        harness::actors::pki::Validity::Current,
    )
}

/// X.509: a certificate for A verifies for A's names only.
fn x509_mapping(ev: &Evidence, times: &Timings, a: &TestUser, b: &TestUser) -> anyhow::Result<()> {
    ev.step("X.509: a certificate for A verifies for A's names only");
    let pki = Pki::new(ev, times)?;
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
