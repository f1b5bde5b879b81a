//! Layer 4 of 4: the real authentication flows, driven as a user would on
//! a pseudo-terminal, and the checks built from them. Imports every layer
//! below.
//!
//! - [`pty`]: a pseudo-terminal session with a transcript ([`pty::Terminal`]);
//! - [`dialogue`]: answering PAM's questions on a PTY and classifying the
//!   end ([`dialogue::AuthOutcome`]), for every flow below;
//! - [`login`]: `login` and `su`;
//! - [`passwd`]: password changes (`passwd` on a PTY, `chpasswd`), checked
//!   against /etc/shadow;
//! - [`ssh`]: the ssh client flows (password, publickey, certificate);
//! - [`device_sshd`]: the device's own running sshd, found, never touched;
//! - [`entry_points`]: every interactive entry point of the image;
//! - [`exemption`]: PAM lines that spare a group or an origin a
//!   requirement, found and exercised with a throw-away member;
//! - [`grant_trial`]: a PAM grant line tried for real;
//! - [`faillock`]: a user's failure record, driving an account into a lock, and
//!   the checks of a locked account (the policy is [`crate::facts::faillock_policy`]);
//! - [`fail2ban`]: the running fail2ban's jails and bans, failed logins
//!   until it bans, and lifting the bans a case caused;
//! - [`mfa`] and [`totp`]: the TOTP second factor;
//! - [`secret_files`]: the files holding secrets, tried as the users their
//!   mode, owner and ACL grant access to.

pub mod device_sshd;
pub mod dialogue;
pub mod entry_points;
pub mod exemption;
pub mod fail2ban;
pub mod faillock;
pub mod grant_trial;
pub mod login;
pub mod mfa;
pub mod passwd;
pub mod pty;
pub mod secret_files;
pub mod ssh;
pub mod totp;
