//! JUnit XML (quick-junit): one testcase per test case, classname = the
//! requirement, with its time, the failure message and the evidence log as
//! system-out; NA requirements as skipped with their reason.

use crate::runner::{Outcome, Record};
use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::path::Path;
use std::time::Duration;

pub fn report(records: &[Record], wall_time: Duration) -> Report {
    let mut suite = TestSuite::new("IEC 62443-4-2 FR-1");
    for r in records {
        let status = match &r.outcome {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Failed(msg) | Outcome::NotDemonstrated(msg) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(msg.as_str())
                    .set_type("requirement not demonstrated");
                s
            }
            Outcome::Skipped(reason) => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(reason.as_str());
                s
            }
        };
        let mut tc = TestCase::new(r.case.id, status);
        tc.set_classname(r.case.requirement)
            .set_time(r.duration)
            .set_system_out(r.evidence.as_str())
            .add_property(Property::new("requirement", r.case.requirement))
            .add_property(Property::new("title", r.case.title))
            .add_property(Property::new("verdict", r.case.verdict.to_string()));
        if let Some(na) = &r.case.not_applicable {
            tc.add_property(Property::new("user_action", na.user_action));
        }
        suite.add_test_case(tc);
    }
    suite.set_time(wall_time);
    let mut report = Report::new("cip-iec-fr1-tests");
    report.set_time(wall_time).add_test_suite(suite);
    report
}

pub fn write(path: &Path, records: &[Record], wall_time: Duration) -> Result<()> {
    let xml = report(records, wall_time)
        .to_string()
        .context("serialising the JUnit report")?;
    std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))
}
