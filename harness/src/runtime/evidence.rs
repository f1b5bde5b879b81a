//! The evidence log of one test case: what an assessor reads to follow the
//! test without rerunning it. Every command, every PTY transcript, every
//! check and the verdict, with a time offset. Secrets registered with
//! [`Evidence::secret`] are masked before they are stored, so a password
//! never reaches a log file.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A cheap, clonable handle: the test body, its `TestUser`s and its
/// `PrivateSshd` all write into the same log, also from `Drop`.
#[derive(Clone)]
pub struct Evidence {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    started: Instant,
    secrets: Vec<String>,
    text: String,
    /// The latest STEP (masked): where a case was when it ran out of time.
    last_step: Option<String>,
}

const MASK: &str = "********";

/// How [`Evidence::timed`] words its lines, for whoever counts them.
pub const TIMED_MADE: &str = "timed check made: ";
pub const TIMED_NOT_MADE: &str = "timed check NOT made: ";

/// The timed checks of a rendered log: (check, `None` when made or
/// `Some(why)` when not).
pub fn timed_checks(log: &str) -> Vec<(String, Option<String>)> {
    log.lines()
        .filter_map(|l| l.split_once("] TIME ").map(|(_, rest)| rest))
        .filter_map(|rest| {
            if let Some(check) = rest.strip_prefix(TIMED_MADE) {
                Some((check.to_owned(), None))
            } else {
                let rest = rest.strip_prefix(TIMED_NOT_MADE)?;
                let (check, why) = rest.split_once(": ").unwrap_or((rest, ""));
                Some((check.to_owned(), Some(why.to_owned())))
            }
        })
        .collect()
}

impl Evidence {
    pub fn new(title_line: &str) -> Self {
        let started_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut text = String::new();
        let _ = writeln!(text, "{title_line}");
        let _ = writeln!(
            text,
            "started: {} (unix time {started_unix})",
            utc_timestamp(started_unix)
        );
        Evidence {
            inner: Arc::new(Mutex::new(Inner {
                started: Instant::now(),
                secrets: Vec::new(),
                text,
                last_step: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock only interrupts an append; the text
        // is still worth keeping, so a poisoned lock is not an error here.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Register a secret (a password, a TOTP code): it is replaced by
    /// `********` in everything logged from now on.
    pub fn secret(&self, secret: &str) {
        if !secret.is_empty() {
            self.lock().secrets.push(secret.to_owned());
        }
    }

    /// Replace every registered secret in `text`.
    pub fn mask(&self, text: &str) -> String {
        mask_with(&self.lock().secrets, text)
    }

    /// A narrative step: what the test is about to do and why.
    pub fn step(&self, what: impl AsRef<str>) {
        self.line("STEP", what.as_ref());
        let mut inner = self.lock();
        inner.last_step = Some(mask_with(&inner.secrets, what.as_ref()));
    }

    /// The latest narrative step, if there was one.
    pub fn last_step(&self) -> Option<String> {
        self.lock().last_step.clone()
    }

    /// An assertion that held.
    pub fn ok(&self, what: impl AsRef<str>) {
        self.line("OK  ", what.as_ref());
    }

    /// A fact worth recording that is not itself an assertion.
    pub fn note(&self, what: impl AsRef<str>) {
        self.line("NOTE", what.as_ref());
    }

    /// A check that depends on the clock (a lock still held shortly before
    /// it lifts, a ban while it lasts): made, or not made and why (a slow
    /// target or the schedule missed its window; never a failure). The
    /// runner counts them: "timed checks made: N of M".
    pub fn timed(&self, check: &str, made: Result<(), &str>) {
        match made {
            Ok(()) => self.line("TIME", &format!("{TIMED_MADE}{check}")),
            Err(why) => self.line("TIME", &format!("{TIMED_NOT_MADE}{check}: {why}")),
        }
    }

    /// Cleanup done (or failed) on the way out.
    pub fn cleanup(&self, what: impl AsRef<str>) {
        self.line("UNDO", what.as_ref());
    }

    /// A command that was run, with its exit status and output.
    pub fn command(&self, command_line: &str, status: &str, stdout: &str, stderr: &str) {
        let mut block = format!("$ {command_line}\n  -> {status}");
        for (name, out) in [("stdout", stdout), ("stderr", stderr)] {
            if !out.trim().is_empty() {
                let _ = write!(block, "\n  {name}:");
                for l in out.trim_end().lines() {
                    let _ = write!(block, "\n  | {l}");
                }
            }
        }
        self.line("CMD ", &block);
    }

    /// A pseudo-terminal transcript, exactly as the program wrote it
    /// (control characters made visible, secrets masked).
    pub fn transcript(&self, label: &str, raw: &str) {
        let mut block = format!("PTY transcript: {label}");
        for l in printable(raw).lines() {
            let _ = write!(block, "\n  > {l}");
        }
        self.line("PTY ", &block);
    }

    fn line(&self, kind: &str, what: &str) {
        let mut inner = self.lock();
        let masked = mask_with(&inner.secrets, what);
        let offset = inner.started.elapsed().as_secs_f64();
        let _ = writeln!(inner.text, "[{offset:>8.3}s] {kind} {masked}");
    }

    /// Seconds since the case started.
    pub fn elapsed_secs(&self) -> f64 {
        self.lock().started.elapsed().as_secs_f64()
    }

    /// The whole log so far.
    pub fn render(&self) -> String {
        self.lock().text.clone()
    }
}

fn mask_with(secrets: &[String], text: &str) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// Make a PTY transcript readable: CR-LF becomes LF, other control
/// characters become `^X`, so an assessor can see exactly what was shown.
fn printable(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.replace("\r\n", "\n").chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from_u32(c as u32 + 0x40).unwrap_or('?'));
            }
            '\u{7f}' => out.push_str("^?"),
            c => out.push(c),
        }
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time, without pulling in a date crate.
pub fn utc_timestamp(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for all dates after 1970.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// An optional value as the evidence says it: the value, or "none".
pub fn or_none<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// [`utc_timestamp`] of a moment on the wall clock.
pub fn utc_text(moment: std::time::SystemTime) -> String {
    let unix = moment
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_timestamp(unix)
}

/// The Unix time of `YYYY-MM-DD HH:MM:SS` (or with a `T` between date and
/// time) read as UTC, as faillock and fail2ban print times under `TZ=UTC0`;
/// `None` for anything else.
pub fn parse_utc(text: &str) -> Option<u64> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once([' ', 'T'])?;
    let numbers = |s: &str, sep: char| -> Option<Vec<i64>> {
        let parts: Vec<i64> = s
            .split(sep)
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        (parts.len() == 3).then_some(parts)
    };
    let (d, t) = (numbers(date, '-')?, numbers(time.trim(), ':')?);
    let (year, month, day) = (d[0], d[1], d[2]);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || t[0] > 23 || t[1] > 59 || t[2] > 60
    {
        return None;
    }
    // Days-from-civil (Howard Hinnant's algorithm), the inverse of the one
    // in utc_timestamp.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_value_reads_none() {
        assert_eq!(or_none(Some(45)), "45");
        assert_eq!(or_none(None::<i64>), "none");
    }

    #[test]
    fn secrets_are_masked_in_every_kind_of_line() {
        let ev = Evidence::new("TC_TEST");
        ev.secret("Hunter2!x");
        ev.step("typing Hunter2!x");
        ev.command("chpasswd", "exit 0", "Hunter2!x", "");
        ev.transcript("login", "Password: Hunter2!x\r\n");
        let text = ev.render();
        assert!(!text.contains("Hunter2!x"), "{text}");
        assert_eq!(text.matches(MASK).count(), 3, "{text}");
    }

    #[test]
    fn transcripts_show_control_characters() {
        assert_eq!(printable("a\r\nb\x1b[0m\x07"), "a\nb^[[0m^G");
    }

    #[test]
    fn utc_timestamps_match_known_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_798_761_599), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn utc_text_parses_back_to_its_time() {
        for unix in [0, 951_782_400, 1_709_251_199, 1_798_761_599] {
            let text = utc_timestamp(unix);
            assert_eq!(parse_utc(&text), Some(unix), "{text}");
            assert_eq!(
                parse_utc(&text.replace('T', " ").replace('Z', "")),
                Some(unix)
            );
        }
        assert_eq!(parse_utc("2024-05-01 10:00:03"), Some(1_714_557_603));
        for bad in [
            "",
            "2024-05-01",
            "2024-13-01 10:00:00",
            "01/05/2024 10:00:00",
            "2024-05-01 10:61:00",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn timed_checks_are_read_back_from_the_log() {
        let ev = Evidence::new("t");
        ev.timed("still locked before it lifts", Ok(()));
        ev.timed("refused while banned", Err("resumed too late: 3 s left"));
        ev.note("timed check made: in a note, not counted");
        assert_eq!(
            timed_checks(&ev.render()),
            vec![
                ("still locked before it lifts".to_owned(), None),
                (
                    "refused while banned".to_owned(),
                    Some("resumed too late: 3 s left".to_owned())
                ),
            ]
        );
    }
}
