//! System plumbing shared by the FR-1 test cases.
//!
//! One module per concern, so a test case reads like its catalog row and
//! everything that touches the system lives here:
//!
//! - [`accounts`]: the account database and identifier uniqueness;
//! - [`case`]: what a test case is (ID, requirement, verdict, body) and how it
//!   says "skip" instead of "fail" when a prerequisite is missing;
//! - [`evidence`]: the per-test-case log an assessor reads;
//! - [`deadline`]: a case's time limit, which the waits below honour;
//! - [`command`]: running a program and recording it in the evidence;
//! - [`user`]: throw-away accounts that are removed again ([`TestUser`]);
//! - [`file_guard`]: byte-exact backup and restore of a system file ([`FileGuard`]);
//! - [`pty`]: a pseudo-terminal session with a transcript ([`Terminal`]);
//! - [`dialogue`]: answering PAM's questions on a PTY and classifying the end,
//!   for every flow below;
//! - [`login`]: the real authentication flows (`login`, `su`) driven on a PTY;
//! - [`entry_points`]: every interactive entry point of the image (`login`,
//!   `su`, the device's sshd), for the cases about an account's state;
//! - [`passwd`]: password changes (`passwd` on a PTY, `chpasswd`), checked
//!   against /etc/shadow;
//! - [`shadow`]: the stored hash and ageing fields, and `chage -l`;
//! - [`pam`]: a PAM service's stack as libpam reads it (includes followed);
//! - [`pam_grants`]: lines of any PAM service that let someone through without
//!   an authenticator, and under which condition;
//! - [`grant_trial`]: such a line tried for real, with a throw-away account
//!   put in its condition and a wrong password;
//! - [`password_policy`]: the quality module in the password stack, its
//!   policy, and passwords derived from it to try;
//! - [`services`]: installed packages, listening TCP and bound UDP sockets
//!   and the processes holding them;
//! - [`wire_probe`]: what a TCP service is, told by what it says on the wire;
//! - [`access`]: opening a file as an unprivileged user;
//! - [`secret_files`]: the files holding secrets (password stores, private
//!   keys), their mode, owner and ACL, tried as the users they grant access to;
//! - [`sshd`]: a private sshd with the system's policy ([`PrivateSshd`]);
//! - [`device_sshd`]: the device's own running sshd, found, never touched;
//! - [`sshd_match`]: the system sshd's configuration for every connection
//!   its `Match` blocks select (`sshd -T -C`);
//! - [`ssh`]: the ssh client flows (password, publickey) against it, on a PTY;
//! - [`private_dir`]: a 0700 temporary directory for keys, journaled and removed ([`private_dir::PrivateDir`]);
//! - [`net`]: loopback ports, and servers in a private network namespace ([`net::IsolatedServer`]);
//! - [`pki`]: a per-run X.509 PKI with the target's `openssl`: CAs, certificates,
//!   CRL, OCSP responder, CMP mock server, TLS, `openssl verify` ([`pki::Pki`]);
//! - [`principals_command`]: sshd's AuthorizedPrincipalsCommand run for an account;
//! - [`ssh_ca`]: an SSH user CA, user certificates, revoked-key lists and where
//!   sshd looks up principals ([`ssh_ca::SshCa`]);
//! - [`faillock`]: the configured lockout policy and a user's failure record;
//! - [`mfa`] and [`totp`]: the TOTP second factor (enrolment, RFC 6238 codes);
//! - [`fail2ban`]: asking the running fail2ban about jails and bans;
//! - [`netns`]: a network namespace joined by a veth pair, as a remote host.

pub mod access;
pub mod accounts;
pub mod case;
pub mod command;
pub mod deadline;
pub mod device_sshd;
pub mod dialogue;
pub mod entry_points;
pub mod evidence;
pub mod fail2ban;
pub mod faillock;
pub mod file_guard;
pub mod grant_trial;
pub mod journal;
pub mod login;
pub mod mfa;
pub mod net;
pub mod netns;
pub mod pam;
pub mod pam_grants;
pub mod passwd;
pub mod password;
pub mod password_policy;
pub mod pki;
pub mod principals_command;
pub mod private_dir;
pub mod process;
pub mod pty;
pub mod run_scope;
pub mod secret_files;
pub mod services;
pub mod shadow;
pub mod ssh;
pub mod ssh_ca;
pub mod sshd;
pub mod sshd_match;
pub mod totp;
pub mod user;
pub mod wire_probe;

pub use case::{Case, NotApplicable, Skip, Verdict};
pub use evidence::Evidence;
pub use file_guard::FileGuard;
pub use login::AuthOutcome;
pub use pty::Terminal;
pub use sshd::PrivateSshd;
pub use user::TestUser;
