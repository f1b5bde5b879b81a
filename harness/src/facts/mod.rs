//! Layer 2 of 4: what the system is configured to do, read without
//! changing anything. Imports only [`crate::runtime`].
//!
//! - [`accounts`]: the account database and identifier uniqueness;
//! - [`consoles`]: the local doors (getty units and drop-ins, the debug
//!   shell, emergency and rescue shells, inittab) and how each lets someone
//!   in without an authenticator;
//! - [`default_passwords`]: the published default passwords the suite
//!   knows, each with its public source;
//! - [`faillock_policy`]: pam_faillock's configured policy and where it
//!   keeps its records;
//! - [`host_keys`]: the host keys an sshd configuration names, with
//!   their type and size;
//! - [`http_crawl`]: the pages of a plain-HTTP server reachable from `/`,
//!   and where one asks for a password (Basic, a password form);
//! - [`inventory`]: every account of every NSS source, whether it can
//!   log in, and the state of its password;
//! - [`pam`]: a PAM service's stack as libpam reads it (includes followed);
//! - [`pam_exemptions`]: lines that let a group, a UID range or an
//!   origin through a phase without the module a requirement depends on;
//! - [`pam_play`]: a stack played as libpam's dispatcher plays it
//!   (substacks, jumps, done/die), for given module results;
//! - [`pam_grants`]: lines of any PAM service that let someone through
//!   without an authenticator, and under which condition;
//! - [`password_policy`]: the quality module in the password stack, its
//!   policy, and passwords derived from it to try;
//! - [`secrets_at_rest`]: files anywhere on the device that hold a
//!   private key (any encoding) or password hashes, found by content;
//! - [`services`]: installed packages, listening TCP and bound UDP sockets
//!   and the processes holding them;
//! - [`shadow`]: the stored hash and ageing fields, and `chage -l`;
//! - [`snmpd`]: the SNMPv1/v2c communities net-snmp's snmpd accepts
//!   (masked);
//! - [`sshd_instances`]: the listening sshd processes and the
//!   configuration each runs with (command-line options included);
//! - [`wire_probe`]: what a TCP service is, told by what it says on the wire.

pub mod accounts;
pub mod consoles;
pub mod default_passwords;
pub mod faillock_policy;
pub mod host_keys;
pub mod http_crawl;
pub mod inventory;
pub mod pam;
pub mod pam_exemptions;
pub mod pam_grants;
pub mod pam_play;
pub mod password_policy;
pub mod secrets_at_rest;
pub mod services;
pub mod shadow;
pub mod snmpd;
pub mod sshd_instances;
pub mod wire_probe;
