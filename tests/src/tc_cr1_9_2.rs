//! TC_CR1.9_2 — CR1.9 strength of public key-based authentication: chain validation.
//!
//! Proves: with only the run's root CA trusted, a leaf issued by its
//! intermediate CA verifies through root → intermediate → leaf (a real
//! three-level chain, shown by `-show_chain`); the same leaf without the
//! intermediate is refused (error 20); a leaf from an unrelated CA, even
//! when the peer supplies that CA's certificate, is refused (error 19); a
//! leaf whose issuer name is the intermediate's but which another key
//! signed is refused (error 7: the chain is checked by signature, not by
//! name);
//! a certificate signed by an end-entity certificate (CA:FALSE) is refused
//! ("invalid CA certificate").
//! Negative control: in-test artefact mutation — the missing intermediate,
//! unrelated CA, impostor and non-CA signer are the refusal halves.

use harness::actors::pki::{LeafSpec, Pki, Timings, Trust};
use harness::{Case, Control, Evidence};

pub const CASE: Case = Case::met(
    "TC_CR1.9_2",
    "CR1.9",
    "Strength of public key-based authentication: chain validation",
    "root → intermediate → leaf verifies; without the intermediate, from an unrelated or impostor CA, or signed by a non-CA certificate, it does not",
    run,
)
.fails_under(&[
    Control::InTest {
        reason: "a leaf without its intermediate, one from an unrelated CA and one from an impostor issuer must not verify",
    },
]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let times = Timings::new(ev);
    let pki = Pki::new(ev, &times)?;
    let root = pki.root().cert.clone();
    let intermediate = pki.intermediate().cert.clone();

    ev.step("root → intermediate → leaf, only the root trusted");
    let leaf = pki.issue(pki.intermediate(), &LeafSpec::new("chained-leaf"))?;
    let chained = pki.verify(&leaf.cert, &pki.chain(), &["-show_chain"])?;
    chained.assert_accepted("the leaf through its intermediate")?;
    let depths = chained
        .output
        .lines()
        .filter(|l| l.starts_with("depth="))
        .count();
    anyhow::ensure!(
        depths == 3,
        "the verified chain has {depths} certificate(s), expected leaf, intermediate and root:\n{}",
        chained.output.trim()
    );
    ev.ok("the leaf verifies through a three-level chain (leaf, intermediate, root)");

    ev.step("refusal: the same leaf without its intermediate");
    pki.verify(&leaf.cert, &Trust::only(&root), &[])?
        .assert_refused_with("the leaf without the intermediate", &[20])?;
    ev.ok("without the intermediate: refused (error 20, unable to get local issuer certificate)");

    ev.step("refusal: a leaf from an unrelated CA, the peer supplying that CA's certificate");
    let unrelated = pki.new_root_ca("unrelated", "FR1 unrelated CA")?;
    let foreign = pki.issue(&unrelated, &LeafSpec::new("unrelated-leaf"))?;
    let supplied = pki.bundle("unrelated-chain.pem", &[&intermediate, &unrelated.cert])?;
    let peer_chain = Trust {
        anchors: root.clone(),
        intermediates: Some(supplied),
    };
    pki.verify(&foreign.cert, &peer_chain, &[])?
        .assert_refused_with("the leaf from an unrelated CA", &[19])?;
    ev.ok("leaf from an unrelated CA: refused (error 19, self-signed certificate in certificate chain)");

    ev.step("refusal: a leaf whose issuer is named like the intermediate but signed by an impostor's key");
    let impostor = pki.new_root_ca("impostor", &pki.intermediate().name)?;
    // No authorityKeyIdentifier: the verifier can only go by the issuer
    // name, finds the real intermediate, and must then check the signature.
    let fake = pki.issue(
        &impostor,
        &LeafSpec::new("impostor-leaf").without_authority_key_id(),
    )?;
    pki.verify(&fake.cert, &pki.chain(), &[])?
        .assert_refused_with("a leaf signed by an impostor of the intermediate", &[7])?;
    ev.ok(format!(
        "leaf issued in the name of \"{}\" by another key: refused (error 7, certificate signature failure)",
        pki.intermediate().name
    ));

    ev.step("refusal: a certificate signed by an end-entity certificate (CA:FALSE)");
    let signer = pki.issue(pki.intermediate(), &LeafSpec::new("end-entity-signer"))?;
    let by_leaf = pki.issue_from_leaf(&signer, "signed-by-end-entity")?;
    let leaf_chain = pki.bundle("end-entity-chain.pem", &[&intermediate, &signer.cert])?;
    pki.verify(
        &by_leaf.cert,
        &Trust {
            anchors: root,
            intermediates: Some(leaf_chain),
        },
        &[],
    )?
    .assert_refused_with("a certificate signed by a CA:FALSE certificate", &[24, 79])?;
    ev.ok("signed by an end-entity certificate: refused (invalid CA certificate)");
    Ok(())
}
