//! The suite on images with CIP's own security customisation
//! (`FR1_FLAVOR=cip`, fixtures/cip), booted with systemd as CIP's image
//! boots: the evidence must hold on the image as CIP ships it, quirks
//! included, and where real CIP does not meet a requirement the suite must
//! say so, naming why.
//!
//! Today both generations fail TC_CR1.11_3 (the remote ban), each for its
//! own reason:
//! - cip-trixie: its fail2ban reads the journal (ssh.service), and the case
//!   still provokes failures through a private sshd outside that unit, so
//!   the ban is not demonstrated (the case must move to the device's own
//!   sshd; see the project's issue on real CIP targets);
//! - cip-bookworm: no netbase, so the jail's port `ssh` cannot be resolved
//!   and no ban could ever be applied (a real defect of that image); in
//!   some boots fail2ban does not even start, because it starts before
//!   syslog-ng has created /var/log/auth.log (a second one).
//!
//! Every other Met case passes on both, none is skipped, and the image is
//! left as it was found.

use fr1_acceptance::{
    run_in_image, ImageRun, RunSpec, Status, SETUP_USER1_AND_SNAPSHOT, SNAPSHOT_AFTER,
};

/// The one case that does not pass on real CIP today.
const REMOTE_BAN: &str = "TC_CR1.11_3";

fn booted_cip(suite: &str) -> ImageRun {
    let run = run_in_image(&RunSpec {
        suite: Some(suite),
        flavor: Some("cip"),
        boot: true,
        setup: Some(SETUP_USER1_AND_SNAPSHOT),
        after: Some(SNAPSHOT_AFTER),
        ..RunSpec::default()
    })
    .expect("image run");
    println!(
        "cip-{suite} booted: {}",
        run.console
            .lines()
            .rev()
            .find_map(|l| l.trim_end_matches('\r').strip_prefix("suite wall time: "))
            .map_or("no wall time printed".to_owned(), |w| format!(
                "suite wall time {w}"
            ))
    );
    run
}

/// Every case but the remote ban passes, nothing Met is skipped, the run's
/// exit status says a case failed, and the image is as before.
fn all_but_the_remote_ban_pass(run: &ImageRun) {
    assert!(
        run.results.len() >= 34,
        "not every case reported:\n{}",
        run.explain()
    );
    for (id, status) in &run.results {
        match status {
            Status::Passed => {}
            Status::Skipped(reason) => assert!(
                reason.starts_with("NA: "),
                "{id} skipped on a CIP image ({reason}):\n{}",
                run.explain()
            ),
            Status::Failed(message) => {
                assert_eq!(id, REMOTE_BAN, "{id} failed: {message}\n{}", run.explain())
            }
        }
    }
    assert_eq!(run.exit_code, Some(101), "{}", run.explain());
    let diff = run.snapshot_changes();
    assert!(
        diff.is_empty(),
        "the run changed the system:\n{}",
        diff.join("\n")
    );
}

/// CIP's image of `suite`, booted: every Met case but the remote ban
/// passes (see [`all_but_the_remote_ban_pass`]), and the remote ban fails
/// naming the requirement and one of the reasons in `because`.
fn booted_cip_fails_only_the_remote_ban(suite: &str, because: &[&str]) {
    let run = booted_cip(suite);
    all_but_the_remote_ban_pass(&run);
    match run.status(REMOTE_BAN) {
        Some(Status::Failed(message))
            if message.starts_with("CR1.11 ") && because.iter().any(|b| message.contains(b)) => {}
        other => panic!("{REMOTE_BAN}: {other:?}\n{}", run.explain()),
    }
}

#[test]
#[ignore = "needs root and the disposable image: run ci/test.sh"]
fn cip_trixie_booted_holds_but_the_remote_ban_is_not_demonstrated() {
    booted_cip_fails_only_the_remote_ban("trixie", &["reads the systemd journal"]);
}

#[test]
#[ignore = "needs root and the disposable image: run ci/test.sh"]
fn cip_bookworm_booted_fails_the_remote_ban_for_lack_of_etc_services() {
    // Two real defects of that image; which one shows depends on the boot:
    // fail2ban starts before syslog-ng has created /var/log/auth.log in
    // some boots and then fails for good ("Have not found any log file for
    // sshd jail"); when it does start, the jail's port cannot be resolved.
    booted_cip_fails_only_the_remote_ban("bookworm", &["/etc/services", "fail2ban is not running"]);
}
