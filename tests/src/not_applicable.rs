//! The requirements the CIP FR-1 assessment found Not Applicable.
//!
//! Each is reported as a skipped entry with the assessment's reason and the
//! action it asks of the product maker, so the report covers every FR-1
//! requirement and an assessor sees what remains the product's job. CR1.12
//! and CR1.9 RE1 also record what the image has (a banner, a TPM), as
//! information for that job; it never changes the verdict.

use harness::runtime::command::{find_program, run};
use harness::{Case, Evidence, NotApplicable};
use std::path::Path;

pub const CASES: [Case; 10] = [
    Case::not_applicable(
        "CR1.2",
        "CR1.2",
        "Software process and device identification and authentication",
        NotApplicable {
            reason: "needs application support for process and device identification; \
                     the CIP reference image has no such application",
            user_action: "identify and authenticate every software process and device with the \
                          product's applications, e.g. TPM-generated device IDs or certificates",
        },
    ),
    Case::not_applicable(
        "CR1.6",
        "CR1.6",
        "Wireless access management",
        NotApplicable {
            reason: "CIP is a platform: wireless access management needs server-side AAA \
                     (e.g. RADIUS), network infrastructure and product-specific authorization",
            user_action: "if the product has wireless access, integrate a server-side AAA \
                          solution, use the client-side tools on CIP (e.g. wpa_supplicant) and \
                          define product-level authorization",
        },
    ),
    Case::not_applicable(
        "NDR1.6",
        "NDR1.6",
        "Wireless access management (network devices)",
        NotApplicable {
            reason: "a requirement for complete network devices, not for a base platform",
            user_action: "as for CR1.6: server-side AAA, client tools on CIP, product-level \
                          authorization and the network infrastructure",
        },
    ),
    Case::not_applicable(
        "NDR1.6-RE1",
        "NDR1.6 RE1",
        "Unique identification and authentication (wireless)",
        NotApplicable {
            reason: "a requirement for complete network devices, not for a base platform",
            user_action: "as for CR1.6: identify and authenticate wireless users uniquely \
                          through the product's AAA solution",
        },
    ),
    Case::not_applicable(
        "CR1.9-RE1",
        "CR1.9 RE1",
        "Hardware security for public key-based authentication",
        NotApplicable {
            reason: "an SL-3 requirement, out of scope of the SL-2 assessment",
            user_action: "for SL-3, store critical keys in secure hardware (e.g. a TPM) and \
                          produce evidence of it",
        },
    )
    .with_probe(probe_tpm),
    Case::not_applicable(
        "CR1.12",
        "CR1.12",
        "System use notification",
        NotApplicable {
            reason: "the notification text depends on the product, its use case, industry and \
                     region, so the platform cannot provide it",
            user_action: "configure a system use notification (e.g. /etc/issue and the sshd \
                          Banner) with the product's own text",
        },
    )
    .with_probe(probe_banner),
    Case::not_applicable(
        "CR1.13",
        "CR1.13",
        "Access via untrusted networks",
        NotApplicable {
            reason: "a network-component requirement, covered in each component-specific section",
            user_action: "none",
        },
    ),
    Case::not_applicable(
        "NDR1.13",
        "NDR1.13",
        "Access via untrusted networks (network devices)",
        NotApplicable {
            reason: "CIP has no mechanism to monitor access via untrusted networks",
            user_action: "monitor network access with network security tools; open only the \
                          ports in use and block the others",
        },
    ),
    Case::not_applicable(
        "NDR1.13-RE1",
        "NDR1.13 RE1",
        "Explicit access request approval",
        NotApplicable {
            reason:
                "approval workflows belong to the product's business logic, not to the platform",
            user_action: "identify the workflows that need explicit approval, define the \
                          approving roles and map them to the privileges they need",
        },
    ),
    Case::not_applicable(
        "CR1.14",
        "CR1.14",
        "Strength of symmetric key-based authentication",
        NotApplicable {
            reason: "CIP stores no permanent symmetric or asymmetric keys; keys for testing are \
                     generated and discarded",
            user_action: "identify the keys installed in the product, review CR1.14 for them and \
                          share the evidence",
        },
    ),
];

/// CR1.12: is a notice shown before login, on the console and over ssh?
fn probe_banner(ev: &Evidence) -> anyhow::Result<()> {
    let issue = std::fs::read_to_string("/etc/issue").unwrap_or_default();
    let visible = issue.lines().any(|l| {
        let l = l.trim();
        // Debian's default /etc/issue is only "Debian GNU/Linux \n \l".
        !l.is_empty() && !l.contains("\\n") && !l.contains("\\l")
    });
    ev.note(format!(
        "/etc/issue {}",
        if visible {
            "carries a notice"
        } else {
            "carries no notice beyond the OS name"
        }
    ));
    if find_program("sshd").is_some() {
        let t = run(
            ev,
            &mut harness::actors::sshd_match::sshd_test_mode()?,
            None,
        )?;
        let banner = t
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("banner "))
            .unwrap_or("none");
        ev.note(format!("sshd Banner: {banner}"));
    }
    Ok(())
}

/// CR1.9 RE1: is there a TPM and the tools to use it?
fn probe_tpm(ev: &Evidence) -> anyhow::Result<()> {
    for dev in ["/dev/tpmrm0", "/dev/tpm0"] {
        ev.note(format!(
            "{dev}: {}",
            if Path::new(dev).exists() {
                "present"
            } else {
                "absent"
            }
        ));
    }
    ev.note(format!(
        "tpm2-tools: {}",
        if find_program("tpm2_getcap").is_some() {
            "installed"
        } else {
            "not installed"
        }
    ));
    Ok(())
}
