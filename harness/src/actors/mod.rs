//! Layer 3 of 4: what a test case sets up on the system and takes away
//! again, each journaled before it exists so that an interrupted run is
//! undone. Imports [`crate::runtime`] and [`crate::facts`].
//!
//! - [`user`]: throw-away accounts ([`user::TestUser`]);
//! - [`file_guard`]: byte-exact backup and restore of a system file
//!   ([`file_guard::FileGuard`]);
//! - [`private_dir`]: a 0700 temporary directory for keys ([`private_dir::PrivateDir`]);
//! - [`access`]: opening a file as an unprivileged user;
//! - [`decoy`]: listeners of the test's own the checks must find
//!   ([`decoy::TelnetDecoy`]);
//! - [`server`]: a server process the harness started, stopped with its tree;
//! - [`net`]: loopback ports, and servers in a private network namespace;
//! - [`netns`]: a network namespace joined by a veth pair, as a remote host;
//! - [`sshd`]: a private sshd with the system's policy ([`sshd::PrivateSshd`]);
//! - [`sshd_match`]: the system sshd's configuration for every connection
//!   its `Match` blocks select (`sshd -T -C`, with throw-away members);
//! - [`principals_command`]: sshd's AuthorizedPrincipalsCommand run for an account;
//! - [`pki`]: a per-run X.509 PKI with the target's `openssl` ([`pki::Pki`]);
//! - [`ssh_ca`]: an SSH user CA, certificates, revoked-key lists ([`ssh_ca::SshCa`]).

pub mod access;
pub mod decoy;
pub mod file_guard;
pub mod net;
pub mod netns;
pub mod pki;
pub mod principals_command;
pub mod private_dir;
pub mod server;
pub mod ssh_ca;
pub mod sshd;
pub mod sshd_match;
pub mod user;
