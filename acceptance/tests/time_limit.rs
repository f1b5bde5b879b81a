//! No hangs: a test case whose program hangs fails at its time limit with
//! the time-limit message, cleans up after itself, and leaves the image as
//! it found it, with nothing of it still running. A test case stuck where
//! the harness cannot cut it stops the run, which still undoes everything.

use fr1_acceptance::{run_in_image, snapshot_diff, ImageRun, RunSpec, Status};
use std::time::{Duration, Instant};

/// TC_CR1.4_1 asks `id -u` about its fresh account right after creating
/// it; here that lookup hangs, in a child of a shell as a stuck NSS lookup
/// would (so the kill must take the whole tree). Every other use of `id`
/// works. The snapshot is taken with the hanging `id` in place, so it is in
/// both.
const SETUP: &str = r#"set -e
mv /usr/bin/id /usr/bin/id.real
cat > /usr/bin/id <<'EOF'
#!/bin/sh
case "$1 $2" in
"-u fr1-"*) sleep 100000; exit 0 ;;
esac
exec /usr/bin/id.real "$@"
EOF
chmod 0755 /usr/bin/id
fr1-snapshot-state > /fr1-out/before
"#;
const AFTER: &str = "fr1-snapshot-state > /fr1-out/after\n";

const LIMIT_S: u64 = 20;

/// The suite in an image prepared by `setup`, with `--time-limit
/// limit_s --exact ids`; says how long the whole image run took.
fn run_with_limit(what: &str, setup: &str, limit_s: u64, ids: &[&str]) -> ImageRun {
    let limit = limit_s.to_string();
    let mut args = vec!["--time-limit", &limit, "--exact"];
    args.extend(ids);
    let started = Instant::now();
    let run = run_in_image(&RunSpec {
        setup: Some(setup),
        after: Some(AFTER),
        suite_args: &args,
        ..RunSpec::default()
    })
    .expect("image run");
    let took = started.elapsed();
    println!("image run with {what}: {:.1} s", took.as_secs_f64());
    assert!(took < Duration::from_secs(120), "{took:?}");
    run
}

/// The snapshots before and after the suite are the same, processes
/// included.
fn assert_left_as_found(run: &ImageRun) {
    let before = std::fs::read_to_string(run.out_file("before")).expect("before snapshot");
    let after = std::fs::read_to_string(run.out_file("after")).expect("after snapshot");
    assert!(before.contains("## processes"), "{before}");
    let diff = snapshot_diff(&before, &after);
    assert!(
        diff.is_empty(),
        "the run changed the image or left something running:\n{}",
        diff.join("\n")
    );
}

#[test]
#[ignore = "needs root and the disposable image: run ci/test.sh"]
fn a_hung_program_fails_its_case_at_the_time_limit_and_leaves_the_image_as_found() {
    let run = run_with_limit("a hung `id`", SETUP, LIMIT_S, &["TC_CR1.4_1"]);

    let expected =
        format!("not demonstrated: time limit of {LIMIT_S} s reached while running `id -u fr1-");
    match run.status("TC_CR1.4_1") {
        Some(Status::Failed(msg)) if msg.starts_with("CR1.4 (") && msg.contains(&expected) => {}
        other => panic!("TC_CR1.4_1: {other:?}\n{}", run.explain()),
    }
    assert_eq!(run.exit_code, Some(101), "{}", run.explain());

    // Cut cooperatively at the limit, not by the backstop 30 s later.
    let wall = run
        .console
        .lines()
        .find_map(|l| l.strip_prefix("suite wall time: "))
        .and_then(|t| t.trim_end_matches(" s").parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no suite wall time\n{}", run.explain()));
    assert!(
        wall >= LIMIT_S as f64 && wall < LIMIT_S as f64 + 15.0,
        "suite wall time {wall} s\n{}",
        run.explain()
    );

    let log = std::fs::read_to_string(run.out_file("evidence/TC_CR1.4_1.log"))
        .expect("evidence of TC_CR1.4_1");
    assert!(
        log.contains("-> killed: the test case's time ran out"),
        "{log}"
    );
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("VERDICT: FAIL") && last.contains(&expected),
        "the evidence does not end with the verdict:\n{log}"
    );
    // The case's own guards removed its account within the cleanup time:
    // nothing was left for the journal.
    assert!(
        !run.console.contains("left behind by a test case"),
        "{}",
        run.explain()
    );

    assert_left_as_found(&run);
}

/// TC_CR1.11_3 reads the nftables ruleset with a plain `Command` (no
/// harness wait, so no deadline) once fail2ban has banned its address
/// (`harness::flows::fail2ban::list_ruleset_unwatched`); here that call hangs. Only the suite's own call: fail2ban's actions and
/// the snapshot use nft too.
const SETUP_STUCK: &str = r#"set -e
nft=$(command -v nft)
mv "$nft" "$nft.real"
cat > "$nft" <<EOF
#!/bin/sh
if [ "\$*" = "list ruleset" ] && [ "\$(cat /proc/\$PPID/comm)" = cip-iec-fr1-tes ]; then
    sleep 100000
fi
exec $nft.real "\$@"
EOF
chmod 0755 "$nft"
fr1-snapshot-state > /fr1-out/before
"#;

/// Enough for TC_CR1.11_3 to reach its ban (about 15 s on a loaded CI
/// machine) before the limit, so that it is the backstop that ends it.
const STUCK_LIMIT_S: u64 = 30;

#[test]
#[ignore = "needs root and the disposable image: run ci/test.sh"]
fn a_case_stuck_beyond_the_harness_stops_the_run_which_still_undoes_everything() {
    // TC_CR1.10_1 runs alone, so it waits for the stuck case.
    let run = run_with_limit(
        "a hung nft",
        SETUP_STUCK,
        STUCK_LIMIT_S,
        &["TC_CR1.11_3", "TC_CR1.10_1"],
    );

    let expected = format!("not demonstrated: time limit of {STUCK_LIMIT_S} s reached while");
    match run.status("TC_CR1.11_3") {
        Some(Status::Failed(msg)) if msg.starts_with("CR1.11 (") && msg.contains(&expected) => {}
        other => panic!("TC_CR1.11_3: {other:?}\n{}", run.explain()),
    }
    assert_eq!(
        run.status("TC_CR1.10_1"),
        Some(&Status::Failed(
            "not run: the run stopped after TC_CR1.11_3 exceeded its time limit".into()
        )),
        "{}",
        run.explain()
    );
    assert_eq!(run.exit_code, Some(101), "{}", run.explain());
    let log = std::fs::read_to_string(run.out_file("evidence/TC_CR1.11_3.log"))
        .expect("evidence of TC_CR1.11_3");
    assert!(log.contains("given up on, the run stops"), "{log}");
    assert!(
        log.lines()
            .last()
            .unwrap_or_default()
            .contains("VERDICT: FAIL"),
        "{log}"
    );
    // The journal undid the case's changes, and the hung program was killed.
    assert!(run.console.contains("(nft), "), "{}", run.explain());
    assert_left_as_found(&run);
}
