//! TC_CR1.8_1 — CR1.8 public key infrastructure certificates.
//!
//! Proves: (a) SSH public-key authentication: a private sshd with the
//! system's configuration, limited to `publickey`, gives a shell for the key
//! in the account's `authorized_keys` and refuses another key; (b) X.509
//! enrolment over CMP: `openssl cmp -cmd ir` against OpenSSL's mock CMP
//! server (private loopback) obtains a certificate, which the client accepts
//! only because it verifies against the run's CA, and which `openssl verify`
//! accepts against the root → intermediate chain. Every PKI operation is
//! timed; the times, their total and the assessment's "< 0.5 s per
//! operation" are in the evidence (reported, not asserted).
//! Negative control: in-test artefact mutation (the case trusts only its
//! own per-run CA, so no image profile can swap its anchor): with the CA
//! file swapped for an unrelated CA the client rejects the enrolled
//! certificate and `openssl verify` refuses it; a wrong CMP shared secret
//! is refused by the server.

use anyhow::Context;
use harness::actors::net::IsolatedServer;
use harness::actors::pki::{CmpRequest, LeafSpec, Pki, Timings, Trust};
use harness::actors::ssh_ca::SshCa;
use harness::flows::ssh::ssh_key;
use harness::runtime::command::{find_program, run as run_cmd};
use harness::runtime::password::random_token;
use harness::{Case, Control, Evidence, PrivateSshd, TestUser};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const CASE: Case = Case::met(
    "TC_CR1.8_1",
    "CR1.8",
    "Public key infrastructure certificates",
    "ssh publickey login takes the authorized key and refuses another; a CMP initial request obtains a certificate that verifies against the CA chain, and not against a swapped CA",
    run,
)
.fails_under(&[
    Control::InTest {
        reason: "the issued certificate is also verified against an unrelated CA file (catalog control: CA file swapped), which must refuse it, and a wrong CMP secret must be refused",
    },
]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let times = Timings::new(ev);
    ev.step(
        "(a) SSH: a key pair whose public key is in the account's authorized_keys, and another key",
    );
    let keys = SshCa::new(ev, &times)?;
    let user = TestUser::create(ev)?;
    let authorized = keys.key("authorized-key")?;
    let other = keys.key("other-key")?;
    user.write_home_file(
        ".ssh/authorized_keys",
        &format!("{}\n", authorized.public_line()?),
        0o600,
    )?;
    let sshd = PrivateSshd::builder()
        .option("AuthenticationMethods", "publickey")
        .start(ev)?;

    let login = times.time("ssh login with the authorized key", || {
        ssh_key(ev, &sshd, user.name(), &authorized.private, &[])
    })?;
    login.assert_shell_as(user.name())?;
    ev.ok("the authorized key gives a shell as the user");
    let refused = times.time("ssh login with another key", || {
        ssh_key(ev, &sshd, user.name(), &other.private, &[])
    })?;
    refused.assert_refused()?;
    ev.ok("another key is refused by the server (it was offered and not accepted)");

    cmp_enrolment(ev, &times)
}

/// (b) X.509 over CMP: an initial request obtains a certificate, which is
/// refused under a swapped CA file, and a wrong shared secret is refused.
fn cmp_enrolment(ev: &Evidence, times: &Timings) -> anyhow::Result<()> {
    ev.step("(b) X.509 over CMP: an initial request to OpenSSL's mock CMP server");
    let pki = Pki::new(ev, times)?;
    let reference = format!("fr1-{}", random_token(6)?);
    let secret = random_token(24)?;
    ev.secret(&secret);
    let secret_file = pki.write_file("cmp-secret", secret.as_bytes())?;
    // The mock server hands out the certificate it is given: the run's
    // intermediate CA issues it for the key the client enrols.
    let to_enrol = pki.issue(
        pki.intermediate(),
        &LeafSpec::new("cmp-client").alt_name("DNS:cmp-client.fr1.test"),
    )?;
    let mut server = pki.cmp_server(&reference, &secret_file, &to_enrol.cert)?;
    let root = pki.root().cert.clone();
    let request = CmpRequest {
        label: "cmp-enrolled",
        reference: &reference,
        secret_file: &secret_file,
        new_key: &to_enrol.key,
        subject: "/CN=cmp-client",
        out_trusted: &root,
    };
    let cert = enrol(ev, &pki, &mut server, &request, &to_enrol.cert)?;
    refused_under_swapped_ca(ev, &pki, &mut server, &request, &cert)?;
    refused_with_wrong_secret(ev, &pki, &mut server, &request)?;
    with_gencmpclient(ev, &pki, &mut server, &request)?;

    let _ = run_cmd(ev, Command::new("openssl").arg("version"), None);
    Ok(())
}

/// (b) The initial request obtains the certificate the CA issued, which
/// verifies against the chain.
fn enrol(
    ev: &Evidence,
    pki: &Pki,
    server: &mut IsolatedServer,
    request: &CmpRequest,
    issued: &Path,
) -> anyhow::Result<PathBuf> {
    let enrolled = pki.cmp_initial_request(server, "openssl", request)?;
    let Some(cert) = enrolled.cert else {
        anyhow::bail!(
            "the CMP initial request obtained no certificate: {}",
            enrolled.ran.all_output().trim()
        );
    };
    anyhow::ensure!(
        read(&cert)? == read(issued)?,
        "the enrolled certificate is not the one the CA issued"
    );
    ev.ok("openssl cmp: IR answered by IP, certificate confirmed (certConf/pkiConf) and accepted by the client against the run's root");
    pki.verify(&cert, &pki.chain(), &[])?
        .assert_accepted("the enrolled certificate against root → intermediate")?;
    ev.ok("the enrolled certificate verifies against the CA chain (openssl verify: OK)");
    Ok(cert)
}

/// The negative control: the CA file swapped for an unrelated CA.
fn refused_under_swapped_ca(
    ev: &Evidence,
    pki: &Pki,
    server: &mut IsolatedServer,
    request: &CmpRequest,
    cert: &Path,
) -> anyhow::Result<()> {
    ev.step("refusal: the CA file swapped for an unrelated CA");
    let unrelated = pki.new_root_ca("unrelated", "FR1 unrelated CA")?;
    let swapped = Trust {
        anchors: unrelated.cert.clone(),
        intermediates: Some(pki.intermediate().cert.clone()),
    };
    pki.verify(cert, &swapped, &[])?
        .assert_refused_with("the enrolled certificate against an unrelated CA", &[20])?;
    ev.ok("openssl verify refuses the enrolled certificate under the swapped CA file (error 20)");
    let rejected = pki.cmp_initial_request(
        server,
        "openssl",
        &CmpRequest {
            label: "cmp-swapped-ca",
            out_trusted: &unrelated.cert,
            ..*request
        },
    )?;
    anyhow::ensure!(
        !rejected.ran.success && rejected.cert.is_none(),
        "the CMP client accepted a certificate that does not verify against its (swapped) CA file"
    );
    anyhow::ensure!(
        rejected.ran.all_output().contains("newly enrolled cert"),
        "the CMP client failed, but not by rejecting the new certificate: {}",
        rejected.ran.all_output().trim()
    );
    ev.ok("the CMP client rejects the certificate it cannot verify against the swapped CA file");
    Ok(())
}

/// A request protected with a wrong shared secret is refused by the server.
fn refused_with_wrong_secret(
    ev: &Evidence,
    pki: &Pki,
    server: &mut IsolatedServer,
    request: &CmpRequest,
) -> anyhow::Result<()> {
    ev.step("refusal: a wrong CMP shared secret");
    let wrong_file = pki.write_file("cmp-wrong-secret", random_token(24)?.as_bytes())?;
    let wrong = pki.cmp_initial_request(
        server,
        "openssl",
        &CmpRequest {
            label: "cmp-wrong-secret",
            secret_file: &wrong_file,
            ..*request
        },
    )?;
    anyhow::ensure!(
        !wrong.ran.success && wrong.cert.is_none(),
        "a CMP request protected with a wrong shared secret obtained a certificate"
    );
    anyhow::ensure!(
        server.output().contains("protection"),
        "the CMP request failed, but the server did not reject its protection: {}",
        server.output().trim()
    );
    ev.ok("the mock CMP server rejects a request protected with a wrong shared secret");
    Ok(())
}

/// The same initial request with genCMPClient, where the image has it.
fn with_gencmpclient(
    ev: &Evidence,
    pki: &Pki,
    server: &mut IsolatedServer,
    request: &CmpRequest,
) -> anyhow::Result<()> {
    let Some(client) = find_program("cmpClient") else {
        ev.note("genCMPClient (cmpClient) is not installed: its part is skipped; openssl cmp covers CMP");
        return Ok(());
    };
    ev.step("genCMPClient (cmpClient) is installed: the same initial request with it");
    let program = client.to_string_lossy().into_owned();
    let gen = pki.cmp_initial_request(
        server,
        &program,
        &CmpRequest {
            label: "gencmpclient",
            ..*request
        },
    )?;
    let Some(cert) = gen.cert else {
        anyhow::bail!(
            "genCMPClient obtained no certificate: {}",
            gen.ran.all_output().trim()
        );
    };
    pki.verify(&cert, &pki.chain(), &[])?
        .assert_accepted("the certificate enrolled by genCMPClient")?;
    ev.ok("genCMPClient enrols a certificate that verifies against the CA chain");
    Ok(())
}

/// A file's bytes, the error naming it.
fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}
