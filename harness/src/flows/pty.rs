//! A program on a pseudo-terminal, as a person at a console would run it.
//!
//! [`Terminal`] wraps a rexpect session and keeps everything the program
//! wrote, so the evidence shows the dialogue exactly. Unlike a plain rexpect
//! session, the terminal starts with ECHO *on*, like a real console: hiding
//! a typed password is then the job of `login`/`su`/`passwd`/`ssh`, which is
//! what CR1.10 needs to observe.

use crate::runtime::command::command_line;
use crate::runtime::deadline::{self, TimeLimit};
use crate::runtime::journal::{self, Undo};
use crate::Evidence;
use anyhow::{anyhow, Context, Result};
use nix::sys::signal::Signal;
use rexpect::reader::{ReadUntil, Regex};
use rexpect::session::{spawn_with_options, PtySession};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// What a program wrote before and including the expected text.
#[derive(Debug, Clone)]
pub struct Matched {
    /// Index of the alternative that matched (for [`Terminal::expect_any`]).
    pub which: usize,
    pub before: String,
    pub text: String,
}

pub struct Terminal {
    session: Option<PtySession>,
    /// The program leads the PTY's session: its PID is the session ID.
    leader: Option<nix::unistd::Pid>,
    /// Our own handle on the PTY's terminal side until the program's first
    /// output, see [`hold_terminal_side`].
    hold: Option<std::fs::File>,
    journal: journal::Entry,
    label: String,
    /// How long one expectation waits (unless the case's time runs out
    /// first).
    timeout: Duration,
    transcript: String,
    ev: Evidence,
}

/// The longest any single expectation waits by default: long enough for a
/// PAM failure delay (2-3 s) on a slow board, short enough that a hung
/// dialogue fails the test instead of the whole run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long rexpect waits at a time before an expectation looks at its
/// case's deadline again: the run may stop the case before its limit.
const LOOK_AGAIN: Duration = Duration::from_millis(500);

impl Terminal {
    /// Start `cmd` on a new PTY (its own session, ECHO on).
    pub fn spawn(ev: &Evidence, label: &str, mut cmd: Command) -> Result<Self> {
        Self::spawn_with_timeout(ev, label, &mut cmd, DEFAULT_TIMEOUT)
    }

    pub fn spawn_with_timeout(
        ev: &Evidence,
        label: &str,
        cmd: &mut Command,
        timeout: Duration,
    ) -> Result<Self> {
        let line = command_line(cmd);
        ev.step(format!("on a PTY: {line}"));
        let gate = StartGate::new()?;
        gate.install(cmd);
        let cmd = std::mem::replace(cmd, Command::new("true"));
        let suite = std::process::id();
        let spawned = spawn_with_options(cmd, session_options(timeout));
        if std::process::id() != suite {
            // rexpect forks, and on a failure between its fork and exec (the
            // PTY already gone because the suite was killed, or an exec
            // error) it returns the error in the *child* too. That child
            // must not go on as a copy of the suite: it would hold the run
            // lock for ever (blocked on a lock another thread held at the
            // fork) or run test cases of its own.
            // SAFETY: _exit ends this forked child at once, running nothing.
            unsafe { nix::libc::_exit(127) };
        }
        let session = spawned.with_context(|| format!("cannot start `{line}` on a PTY"))?;
        let hold = hold_terminal_side(&session);
        gate.open();
        let leader = session_leader(&session);
        let journal = match leader {
            Some(pid) => journal::record(&Undo::KillProcess {
                pid: pid.as_raw(),
                start_time: crate::runtime::process::start_time(pid.as_raw()).unwrap_or(0),
            })?,
            None => journal::Entry::none(),
        };
        Ok(Terminal {
            session: Some(session),
            leader,
            hold,
            journal,
            label: label.to_owned(),
            timeout,
            transcript: String::new(),
            ev: ev.clone(),
        })
    }

    fn session(&mut self) -> Result<&mut PtySession> {
        self.session
            .as_mut()
            .ok_or_else(|| anyhow!("{}: the PTY session is already closed", self.label))
    }

    /// Wait for text matching `regex`.
    pub fn expect(&mut self, regex: &str) -> Result<Matched> {
        self.expect_any(&[regex])
    }

    /// Wait until one of `regexes` matches; says which one.
    pub fn expect_any(&mut self, regexes: &[&str]) -> Result<Matched> {
        self.expect_inner(regexes, false)
    }

    /// Like [`Terminal::expect_any`], but the program ending is an answer
    /// too: then `which` is `regexes.len()` and `before` holds what it
    /// wrote last. For dialogues whose refusal is simply the program
    /// giving up (`passwd` after "You must wait longer…").
    pub fn expect_any_or_end(&mut self, regexes: &[&str]) -> Result<Matched> {
        self.expect_inner(regexes, true)
    }

    fn expect_inner(&mut self, regexes: &[&str], end_is_an_answer: bool) -> Result<Matched> {
        let compiled: Vec<Regex> = regexes
            .iter()
            .map(|r| Regex::new(r).with_context(|| format!("bad expect pattern {r:?}")))
            .collect::<Result<_>>()?;
        let label = self.label.clone();
        let deadline = deadline::current();
        let started = Instant::now();
        let result = loop {
            let needles = compiled.iter().cloned().map(ReadUntil::Regex).collect();
            match self.session()?.exp_any(needles) {
                // One slice without a match; what came stays in rexpect's
                // buffer for the next.
                Err(rexpect::error::Error::Timeout { got, .. }) => {
                    if let Some(d) = deadline.as_ref().filter(|d| d.time_left().is_zero()) {
                        self.transcript.push_str(&got);
                        return Err(
                            d.cut(&format!("waiting for {label} to show one of {regexes:?}"))
                        );
                    }
                    if started.elapsed() >= self.timeout {
                        break Err((format!("timed out after {} s", self.timeout.as_secs()), got));
                    }
                }
                Ok(found) => break Ok(found),
                Err(rexpect::error::Error::EOF { got, .. }) if end_is_an_answer => {
                    self.transcript.push_str(&got);
                    return Ok(Matched {
                        which: regexes.len(),
                        before: got,
                        text: String::new(),
                    });
                }
                Err(rexpect::error::Error::EOF { got, .. }) => {
                    break Err(("the program ended first".to_owned(), got))
                }
                Err(other) => break Err((other.to_string(), String::new())),
            }
        };
        match result {
            Ok((before, text)) => {
                // The program is past its terminal set-up: the master side
                // now reports its end as it should.
                self.hold = None;
                self.transcript.push_str(&before);
                self.transcript.push_str(&text);
                let which = compiled.iter().position(|r| r.is_match(&text)).unwrap_or(0);
                Ok(Matched {
                    which,
                    before,
                    text,
                })
            }
            Err((why, got)) => {
                self.transcript.push_str(&got);
                Err(anyhow!(
                    "{label}: expected one of {regexes:?}; {why}; the terminal showed: {:?}",
                    self.ev.mask(tail(&self.transcript, 400))
                ))
            }
        }
    }

    /// Wait for `regex` for up to `total`, even beyond the per-expectation
    /// timeout, printing progress so a long wait is visibly alive.
    pub fn expect_within(&mut self, regex: &str, total: Duration) -> Result<Matched> {
        let started = Instant::now();
        loop {
            match self.expect(regex) {
                Ok(m) => return Ok(m),
                Err(e) if started.elapsed() >= total || e.is::<TimeLimit>() => return Err(e),
                Err(_) => eprintln!(
                    "  ... {}: still waiting for {regex:?} ({}s)",
                    self.label,
                    started.elapsed().as_secs()
                ),
            }
        }
    }

    /// Type a line (it will show in the transcript if the terminal echoes).
    pub fn send_line(&mut self, line: &str) -> Result<()> {
        let label = self.label.clone();
        self.session()?
            .send_line(line)
            .with_context(|| format!("{label}: cannot type on the PTY"))?;
        Ok(())
    }

    /// Type a secret: it is registered for masking first, so even if the
    /// program echoes it, no log shows it.
    pub fn send_secret(&mut self, secret: &str) -> Result<()> {
        self.ev.secret(secret);
        self.send_line(secret)
    }

    /// Everything the program wrote so far (unmasked: for assertions such as
    /// "the password was not echoed").
    pub fn transcript(&self) -> &str {
        &self.transcript
    }

    /// Read to end of output and reap the program; returns its exit code
    /// (None if killed by a signal). The output is read for up to the
    /// expectation timeout; the program is waited for as long as the
    /// case's time allows.
    pub fn wait_exit(&mut self) -> Result<Option<i32>> {
        self.hold = None;
        let label = self.label.clone();
        let deadline = deadline::current();
        let out_of_time = || deadline.as_ref().filter(|d| d.time_left().is_zero());
        let started = Instant::now();
        loop {
            match self.session()?.exp_eof() {
                Ok(rest) => {
                    self.transcript.push_str(&rest);
                    break;
                }
                Err(rexpect::error::Error::Timeout { .. }) if started.elapsed() < self.timeout => {
                    if let Some(d) = out_of_time() {
                        return Err(d.cut(&format!("waiting for {label} to end")));
                    }
                }
                Err(_) => break,
            }
        }
        let status = loop {
            let process = self.session()?.process_mut();
            if deadline.is_none() {
                break process.wait();
            }
            // status() reaps the program if it has ended.
            match process.status() {
                Some(nix::sys::wait::WaitStatus::StillAlive) => {}
                Some(status) => break Ok(status),
                None => break process.wait(),
            }
            if let Some(d) = out_of_time() {
                return Err(d.cut(&format!("waiting for {label} to end")));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let status = status.with_context(|| format!("{label}: cannot wait for the program"))?;
        Ok(match status {
            nix::sys::wait::WaitStatus::Exited(_, code) => Some(code),
            _ => None,
        })
    }

    /// Kill the program and every process of its terminal session.
    pub fn close(&mut self) {
        if let Some(mut session) = self.session.take() {
            if let Some(sid) = self.leader {
                crate::runtime::process::kill_session(sid);
            }
            let _ = session.process_mut().kill(Signal::SIGKILL);
            self.journal.done();
            self.ev.transcript(&self.label, &self.transcript);
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.close();
    }
}

/// rexpect's own timeout is one slice of a wait: rexpect keeps what it
/// read for the next one, and between slices the wait checks both its own
/// timeout and the case's time (see expect_inner).
fn session_options(timeout: Duration) -> rexpect::reader::Options {
    let slice = timeout.min(LOOK_AGAIN).max(Duration::from_millis(1));
    rexpect::reader::Options::new()
        .timeout_ms(Some(slice.as_millis() as u64))
        .strip_ansi_escape_codes(false)
}

/// The program waits at this gate until we hold the terminal side (see
/// [`hold_terminal_side`]): trixie's login calls vhangup() first thing,
/// and on a busy machine it did so before the hold was open, so the whole
/// dialogue was lost.
struct StartGate {
    gate: std::os::fd::OwnedFd,
    opener: std::os::fd::OwnedFd,
}

impl StartGate {
    /// Close-on-exec: other programs forked meanwhile do not keep copies
    /// of the gate.
    fn new() -> Result<Self> {
        let (gate, opener) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .context("creating the PTY start gate")?;
        Ok(StartGate { gate, opener })
    }

    /// Make `cmd`'s child wait at the gate between fork and exec, then
    /// turn ECHO on, like a console.
    fn install(&self, cmd: &mut Command) {
        let (gate_fd, opener_fd) = (self.gate.as_raw_fd(), self.opener.as_raw_fd());
        let run_lock_fd = crate::runtime::process::run_lock_fd();
        let suite = nix::unistd::getpid().as_raw();
        // SAFETY: runs in the forked child before exec; it only calls prctl,
        // getppid, _exit, close and read on the gate and tcgetattr/tcsetattr
        // on fd 0, which are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                // Die with the suite: if it is killed between this fork and
                // the journal entry for the session, nothing else would end
                // the program (a login waits a minute for its password, and
                // this child may still wait at the gate). The Terminal lives
                // and dies on the thread that forks, so the thread ending
                // early cannot fire this.
                nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGKILL);
                // Killed before the line above: no signal will come.
                if nix::libc::getppid() != suite {
                    nix::libc::_exit(127);
                }
                // The fork gave the child a copy of the write end too, and
                // of the run lock, which it must not hold while it waits.
                nix::libc::close(opener_fd);
                if run_lock_fd >= 0 {
                    nix::libc::close(run_lock_fd);
                }
                let mut byte = 0u8;
                // Returns with our byte (an error, EINTR, also lets it go on).
                nix::libc::read(gate_fd, (&mut byte as *mut u8).cast(), 1);
                let mut t: nix::libc::termios = std::mem::zeroed();
                if nix::libc::tcgetattr(0, &mut t) == 0 {
                    t.c_lflag |= nix::libc::ECHO;
                    nix::libc::tcsetattr(0, nix::libc::TCSANOW, &t);
                }
                Ok(())
            });
        }
    }

    /// Let the program go on.
    fn open(self) {
        // A byte, not the end of file: children that other threads fork
        // meanwhile hold copies of the write end until they exec, and one
        // of them may itself wait at its own gate.
        let _ = nix::unistd::write(&self.opener, &[1]);
        drop(self.opener);
        drop(self.gate);
    }
}

/// util-linux `login` (Debian trixie) calls vhangup() on its terminal and
/// reopens it. While it has no descriptor open, reading the master side
/// fails with EIO, which rexpect takes for the end of the program, and the
/// whole dialogue is lost. Holding the terminal side open ourselves (without
/// making it our controlling terminal) keeps the master readable through
/// that window; the handle is dropped at the program's first output, so the
/// program's real exit is still seen.
fn hold_terminal_side(session: &PtySession) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let master = session.process().get_file_handle().ok()?;
    let mut name = [0u8; 128];
    // SAFETY: ptsname_r writes at most `name.len()` bytes into our buffer.
    let rc =
        unsafe { nix::libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr().cast(), name.len()) };
    if rc != 0 {
        return None;
    }
    let end = name.iter().position(|&b| b == 0)?;
    let path = std::str::from_utf8(&name[..end]).ok()?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(path)
        .ok()
}

/// The PID of the program, which leads the PTY's session: the kernel tells
/// the session ID through the master side once the child has made the PTY
/// its controlling terminal, which happens right after the fork.
fn session_leader(session: &PtySession) -> Option<nix::unistd::Pid> {
    let master = session.process().get_file_handle().ok()?;
    for _ in 0..200 {
        // SAFETY: plain ioctl wrapper on a valid, owned descriptor.
        let sid = unsafe { nix::libc::tcgetsid(master.as_raw_fd()) };
        if sid > 1 {
            return Some(nix::unistd::Pid::from_raw(sid));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..=s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::deadline::Deadline;

    fn shell_script(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn an_expectation_gives_up_when_the_case_time_runs_out() {
        let ev = Evidence::new("t");
        deadline::install(Some(Deadline::new(
            Duration::from_secs(1),
            Duration::from_secs(10),
        )));
        let mut term =
            Terminal::spawn(&ev, "sleeper", shell_script("echo ready; sleep 100")).unwrap();
        term.expect("ready").unwrap();
        let started = Instant::now();
        let err = term.expect("never").unwrap_err();
        deadline::install(None);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(err.is::<TimeLimit>(), "{err:#}");
        assert_eq!(
            err.to_string(),
            r#"time limit of 1 s reached while waiting for sleeper to show one of ["never"]"#
        );
    }

    #[test]
    fn without_a_deadline_an_expectation_times_out_by_itself() {
        let ev = Evidence::new("t");
        let mut term = Terminal::spawn_with_timeout(
            &ev,
            "sleeper",
            &mut shell_script("echo ready; sleep 100"),
            Duration::from_secs(1),
        )
        .unwrap();
        let started = Instant::now();
        let err = term.expect("never").unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            err.contains("timed out after 1 s") && err.contains("ready"),
            "{err}"
        );
    }

    #[test]
    fn text_split_over_slices_still_matches_and_the_exit_code_is_read() {
        let ev = Evidence::new("t");
        deadline::install(Some(Deadline::new(Duration::from_secs(30), Duration::ZERO)));
        let mut term = Terminal::spawn(
            &ev,
            "slow",
            shell_script("printf 'Pass'; sleep 1.2; echo 'word:'; exit 7"),
        )
        .unwrap();
        let matched = term.expect("Password:");
        let code = term.wait_exit();
        deadline::install(None);
        assert_eq!(matched.unwrap().text, "Password:");
        assert_eq!(code.unwrap(), Some(7));
    }
}
