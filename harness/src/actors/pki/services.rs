//! The PKI's network services and their clients: the OCSP responder, the
//! OpenSSL mock CMP server with `openssl cmp`, and a TLS server with
//! `openssl s_client`. Each server is an [`IsolatedServer`] (private
//! loopback); each client runs in its namespace.

use super::{Ca, Leaf, Pki};
use crate::actors::net::{IsolatedServer, ISOLATED_PORT};
use crate::runtime::command::path_str;
use crate::runtime::command::Ran;
use anyhow::Result;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What an OCSP responder said about one certificate.
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    /// `good`, `revoked` or `unknown`.
    pub status: String,
    /// The client verified the responder's signature (`Response verify OK`).
    pub response_verified: bool,
    pub output: String,
}

/// The outcome of one TLS handshake by `openssl s_client`.
#[derive(Debug, Clone)]
pub struct TlsHandshake {
    /// Handshake completed, a cipher was agreed and the chain verified.
    pub established: bool,
    /// `Verify return code: N (TEXT)` → (N, TEXT).
    pub verify: Option<(u32, String)>,
    pub output: String,
}

impl TlsHandshake {
    /// The client's verification result as the evidence says it:
    /// "verify error 66 (EE certificate key too weak)".
    pub fn verify_text(&self) -> String {
        match &self.verify {
            Some((0, text)) => format!("verified ({text})"),
            Some((code, text)) => format!("verify error {code} ({text})"),
            None => "no verification result printed".to_owned(),
        }
    }
}

/// The outcome of one `openssl cmp -cmd ir`.
#[derive(Debug)]
pub struct CmpOutcome {
    pub ran: Ran,
    /// The enrolled certificate, when the client accepted one.
    pub cert: Option<PathBuf>,
}

impl Pki {
    /// An OCSP responder for `ca`, answering from its database and signing
    /// with its key (`openssl ocsp -port`).
    pub fn ocsp_responder(&self, ca: &Ca) -> Result<IsolatedServer> {
        let mut cmd = Command::new("openssl");
        cmd.current_dir(&self.path).args([
            "ocsp",
            "-index",
            &path_str(&ca.index)?,
            "-port",
            &ISOLATED_PORT.to_string(),
            "-rsigner",
            &path_str(&ca.cert)?,
            "-rkey",
            &path_str(&ca.key)?,
            "-CA",
            &path_str(&ca.cert)?,
            "-ignore_err",
        ]);
        let log = self.path.join("ocsp-responder.log");
        IsolatedServer::start(
            &self.ev,
            &format!("OCSP responder of {}", ca.name),
            cmd,
            &log,
        )
    }

    /// Ask `responder` about `cert` (issued by `ca`) and verify its signed
    /// answer against the run's root.
    pub fn ocsp_status(
        &self,
        responder: &mut IsolatedServer,
        ca: &Ca,
        cert: &Path,
    ) -> Result<OcspAnswer> {
        let mut cmd = responder.client("openssl")?;
        let cert_arg = path_str(cert)?;
        cmd.current_dir(&self.path).args([
            "ocsp",
            "-issuer",
            &path_str(&ca.cert)?,
            "-cert",
            &cert_arg,
            "-url",
            &responder.url(),
            "-CAfile",
            &path_str(&self.root.cert)?,
            "-verify_other",
            &path_str(&ca.cert)?,
        ]);
        self.ev
            .note("the next command runs in the OCSP responder's network namespace");
        let ran = self.timed("OCSP query", &mut cmd)?;
        let prefix = format!("{cert_arg}: ");
        let status = ran
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Ok(OcspAnswer {
            status,
            response_verified: ran.success && ran.all_output().contains("Response verify OK"),
            output: ran.all_output(),
        })
    }

    /// OpenSSL's mock CMP server (`openssl cmp -port … -srv_*`). It
    /// authenticates clients by the shared secret in `secret_file` (PBM,
    /// reference `reference`) and answers an initial request with
    /// `enrolled`, plus the chain and the root as CA certificates. The
    /// mock server does not run a CA itself: the run's intermediate CA
    /// issued `enrolled` for the key the client will enrol.
    pub fn cmp_server(
        &self,
        reference: &str,
        secret_file: &Path,
        enrolled: &Path,
    ) -> Result<IsolatedServer> {
        let mut cmd = Command::new("openssl");
        cmd.current_dir(&self.path).args([
            "cmp",
            "-port",
            &ISOLATED_PORT.to_string(),
            "-srv_ref",
            reference,
            "-srv_secret",
            &format!("file:{}", path_str(secret_file)?),
            "-rsp_cert",
            &path_str(enrolled)?,
            "-rsp_extracerts",
            &path_str(&self.intermediate.cert)?,
            "-rsp_capubs",
            &path_str(&self.root.cert)?,
        ]);
        let log = self.path.join("cmp-server.log");
        IsolatedServer::start(&self.ev, "OpenSSL mock CMP server", cmd, &log)
    }

    /// `openssl cmp -cmd ir` against `server`: enrol `new_key` as
    /// `subject`, protecting the request with the shared secret, and accept
    /// the new certificate only if it verifies against `out_trusted`.
    pub fn cmp_initial_request(
        &self,
        server: &mut IsolatedServer,
        program: &str,
        request: &CmpRequest<'_>,
    ) -> Result<CmpOutcome> {
        let certout = self.path.join(format!("{}.pem", request.label));
        let _ = fs::remove_file(&certout);
        let args = [
            "-cmd".to_owned(),
            "ir".to_owned(),
            "-server".to_owned(),
            server.address(),
            "-recipient".to_owned(),
            self.intermediate.subject(),
            "-ref".to_owned(),
            request.reference.to_owned(),
            "-secret".to_owned(),
            format!("file:{}", path_str(request.secret_file)?),
            "-newkey".to_owned(),
            path_str(request.new_key)?,
            "-subject".to_owned(),
            request.subject.to_owned(),
            "-out_trusted".to_owned(),
            path_str(request.out_trusted)?,
            "-untrusted".to_owned(),
            path_str(&self.intermediate.cert)?,
            "-certout".to_owned(),
            path_str(&certout)?,
        ];
        let mut cmd = server.client(program)?;
        cmd.current_dir(&self.path);
        // `openssl cmp …`; genCMPClient's `cmpClient` takes the same options
        // without the subcommand.
        if program == "openssl" {
            cmd.arg("cmp");
        }
        cmd.args(args);
        self.ev
            .note("the next command runs in the CMP server's network namespace");
        let ran = self.timed(
            &format!("CMP initial request ({})", request.label),
            &mut cmd,
        )?;
        let cert = (ran.success && certout.is_file()).then_some(certout);
        Ok(CmpOutcome { ran, cert })
    }

    /// A TLS server (`openssl s_server -www`) presenting `leaf`. With
    /// `weak_peer`, the server itself runs at security level 0, so that it
    /// can present a certificate the system's level would not load: the
    /// server is the test's deliberately weak peer; the client side keeps
    /// the system's configuration.
    pub fn tls_server(&self, leaf: &Leaf, weak_peer: bool) -> Result<IsolatedServer> {
        let mut cmd = Command::new("openssl");
        cmd.current_dir(&self.path).args([
            "s_server",
            "-accept",
            &ISOLATED_PORT.to_string(),
            "-cert",
            &path_str(&leaf.cert)?,
            "-key",
            &path_str(&leaf.key)?,
            "-www",
        ]);
        if weak_peer {
            cmd.args(["-cipher", "DEFAULT:@SECLEVEL=0"]);
        }
        let log = self.path.join(format!("tls-server-{}.log", leaf.name));
        IsolatedServer::start(
            &self.ev,
            &format!("TLS server presenting {}", leaf.name),
            cmd,
            &log,
        )
    }

    /// `openssl s_client` with the system's OpenSSL configuration (no
    /// cipher or security-level option), trusting `anchor`, aborting on
    /// any verification error.
    pub fn tls_connect(&self, server: &mut IsolatedServer, anchor: &Path) -> Result<TlsHandshake> {
        let mut cmd = server.client("openssl")?;
        cmd.current_dir(&self.path).args([
            "s_client",
            "-connect",
            &server.address(),
            "-CAfile",
            &path_str(anchor)?,
            "-verify_return_error",
        ]);
        self.ev
            .note("the next command runs in the TLS server's network namespace");
        let ran = self.timed("TLS handshake", &mut cmd)?;
        let output = ran.all_output();
        let verify = parse_tls_verify(&output);
        let cipher_agreed = output.contains("Cipher is ") && !output.contains("Cipher is (NONE)");
        Ok(TlsHandshake {
            established: ran.success && cipher_agreed && matches!(verify, Some((0, _))),
            verify,
            output,
        })
    }
}
/// The options of one CMP initial request.
pub struct CmpRequest<'a> {
    /// Names the output file `<label>.pem` and the timing entry.
    pub label: &'a str,
    pub reference: &'a str,
    pub secret_file: &'a Path,
    pub new_key: &'a Path,
    pub subject: &'a str,
    /// Anchors the client checks the enrolled certificate against.
    pub out_trusted: &'a Path,
}
/// `Verify return code: 66 (EE certificate key too weak)` → (66, text).
fn parse_tls_verify(output: &str) -> Option<(u32, String)> {
    output.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("Verify return code: ")?;
        let (code, text) = rest.split_once(' ')?;
        Some((
            code.parse().ok()?,
            text.trim_start_matches('(')
                .trim_end_matches(')')
                .to_owned(),
        ))
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_results_read_as_prose() {
        let handshake = |verify| TlsHandshake {
            established: false,
            verify,
            output: String::new(),
        };
        assert_eq!(
            handshake(Some((66, "EE certificate key too weak".into()))).verify_text(),
            "verify error 66 (EE certificate key too weak)"
        );
        assert_eq!(
            handshake(Some((0, "ok".into()))).verify_text(),
            "verified (ok)"
        );
        assert_eq!(
            handshake(None).verify_text(),
            "no verification result printed"
        );
        assert_eq!(crate::actors::pki::Validity::Expired.to_string(), "expired");
    }

    #[test]
    fn tls_verify_codes_are_parsed() {
        assert_eq!(
            parse_tls_verify("---\nVerify return code: 66 (EE certificate key too weak)\n"),
            Some((66, "EE certificate key too weak".into()))
        );
        assert_eq!(
            parse_tls_verify("    Verify return code: 0 (ok)\n"),
            Some((0, "ok".into()))
        );
    }
}
