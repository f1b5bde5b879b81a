//! A program on a pseudo-terminal, as a person at a console would run it.
//!
//! [`Terminal`] wraps a rexpect session and keeps everything the program
//! wrote, so the evidence shows the dialogue exactly. Unlike a plain rexpect
//! session, the terminal starts with ECHO *on*, like a real console: hiding
//! a typed password is then the job of `login`/`su`/`passwd`/`ssh`, which is
//! what CR1.10 needs to observe.

use crate::command::command_line;
use crate::journal::{self, Undo};
use crate::Evidence;
use anyhow::{anyhow, Context, Result};
use nix::sys::signal::Signal;
use rexpect::reader::{ReadUntil, Regex};
use rexpect::session::{spawn_with_options, PtySession};
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
    transcript: String,
    ev: Evidence,
}

/// The longest any single expectation waits by default: long enough for a
/// PAM failure delay (2-3 s) on a slow board, short enough that a hung
/// dialogue fails the test instead of the whole run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

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
        // SAFETY: runs in the forked child before exec; it only calls
        // tcgetattr/tcsetattr on fd 0 and prctl, which are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                let mut t: nix::libc::termios = std::mem::zeroed();
                if nix::libc::tcgetattr(0, &mut t) == 0 {
                    t.c_lflag |= nix::libc::ECHO;
                    nix::libc::tcsetattr(0, nix::libc::TCSANOW, &t);
                }
                // Die with the suite: if it is killed between this fork and
                // the journal entry for the session, nothing else would end
                // the program (a login waits a minute for its password).
                // The Terminal lives and dies on the thread that forks, so
                // the thread ending early cannot fire this.
                nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGKILL);
                Ok(())
            });
        }
        let cmd = std::mem::replace(cmd, Command::new("true"));
        let options = rexpect::reader::Options::new()
            .timeout_ms(Some(timeout.as_millis() as u64))
            .strip_ansi_escape_codes(false);
        let session = spawn_with_options(cmd, options)
            .with_context(|| format!("cannot start `{line}` on a PTY"))?;
        let hold = hold_terminal_side(&session);
        let leader = session_leader(&session);
        let journal = match leader {
            Some(pid) => journal::record(&Undo::KillProcess {
                pid: pid.as_raw(),
                start_time: journal::start_time(pid.as_raw()).unwrap_or(0),
            })?,
            None => journal::Entry::none(),
        };
        Ok(Terminal {
            session: Some(session),
            leader,
            hold,
            journal,
            label: label.to_owned(),
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
        let needle = ReadUntil::Any(compiled.iter().cloned().map(ReadUntil::Regex).collect());
        let label = self.label.clone();
        let result = self.session()?.exp_any(match needle {
            ReadUntil::Any(v) => v,
            other => vec![other],
        });
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
            Err(rexpect::error::Error::EOF { got, .. }) if end_is_an_answer => {
                self.transcript.push_str(&got);
                Ok(Matched {
                    which: regexes.len(),
                    before: got,
                    text: String::new(),
                })
            }
            Err(e) => {
                let got = match &e {
                    rexpect::error::Error::Timeout { got, .. } => got.clone(),
                    rexpect::error::Error::EOF { got, .. } => got.clone(),
                    _ => String::new(),
                };
                self.transcript.push_str(&got);
                Err(anyhow!(
                    "{label}: expected one of {regexes:?}; {}; the terminal showed: {:?}",
                    short_error(&e),
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
                Err(e) if started.elapsed() >= total => return Err(e),
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
    /// (None if killed by a signal).
    pub fn wait_exit(&mut self) -> Result<Option<i32>> {
        self.hold = None;
        let label = self.label.clone();
        let session = self.session()?;
        let rest = session.exp_eof().unwrap_or_default();
        let status = session
            .process_mut()
            .wait()
            .with_context(|| format!("{label}: cannot wait for the program"))?;
        self.transcript.push_str(&rest);
        Ok(match status {
            nix::sys::wait::WaitStatus::Exited(_, code) => Some(code),
            _ => None,
        })
    }

    /// Kill the program and every process of its terminal session.
    pub fn close(&mut self) {
        if let Some(mut session) = self.session.take() {
            if let Some(sid) = self.leader {
                crate::process::kill_session(sid);
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

/// util-linux `login` (Debian trixie) calls vhangup() on its terminal and
/// reopens it. While it has no descriptor open, reading the master side
/// fails with EIO, which rexpect takes for the end of the program, and the
/// whole dialogue is lost. Holding the terminal side open ourselves (without
/// making it our controlling terminal) keeps the master readable through
/// that window; the handle is dropped at the program's first output, so the
/// program's real exit is still seen.
fn hold_terminal_side(session: &PtySession) -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
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
    use std::os::fd::AsRawFd;
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

fn short_error(e: &rexpect::error::Error) -> String {
    match e {
        rexpect::error::Error::Timeout { timeout, .. } => {
            format!("timed out after {} s", timeout.as_secs())
        }
        rexpect::error::Error::EOF { .. } => "the program ended first".to_owned(),
        other => other.to_string(),
    }
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..=s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[start..]
}
