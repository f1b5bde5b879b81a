//! Running a program and recording it in the evidence.
//!
//! Every system change and every observation a test case makes goes through
//! here, so the evidence shows the exact command line, exit status and output.

use crate::runtime::deadline::{self, Deadline};
use crate::Evidence;
use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::Duration;

/// The result of a recorded command.
#[derive(Debug)]
pub struct Ran {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// stdout and stderr together, for matching messages that a program may
    /// write to either.
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Shell-like rendering of a command line for the evidence.
pub fn command_line(cmd: &Command) -> String {
    let mut parts = vec![quote(&cmd.get_program().to_string_lossy())];
    parts.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    parts.join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `p` as a string for a program's argument or a configuration line. Not
/// lossy: a path that is not UTF-8 is an error naming it, never a
/// look-alike path with replacement characters that names another file.
pub fn path_str(p: &std::path::Path) -> Result<String> {
    p.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not valid UTF-8", p.display()))
}

/// `setpriv`, the way the harness runs a program as another identity: real
/// and effective UID and GID switched, the supplementary groups either
/// those of the account (`--init-groups`, as a login gives them) or none
/// (`--clear-groups`, an identity no group membership can help). The
/// environment and working directory are the caller's to set: each flow
/// needs its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setpriv {
    uid: u32,
    gid: u32,
    groups: Groups,
}

/// The supplementary groups a [`Setpriv`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Groups {
    /// `--init-groups`: the account's own, from the group database.
    OfAccount,
    /// `--clear-groups`: none.
    None,
    /// `--groups GID`: this one group only (no account needed).
    Only(u32),
}

impl Setpriv {
    pub fn new(uid: u32, gid: u32, groups: Groups) -> Self {
        Setpriv { uid, gid, groups }
    }

    /// `setpriv --reuid UID --regid GID --init-groups|--clear-groups|--groups G --
    /// PROGRAM`; arguments of the program follow with `.arg`/`.args`.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg("--reuid")
            .arg(self.uid.to_string())
            .arg("--regid")
            .arg(self.gid.to_string());
        match self.groups {
            Groups::OfAccount => cmd.arg("--init-groups"),
            Groups::None => cmd.arg("--clear-groups"),
            Groups::Only(gid) => cmd.arg("--groups").arg(gid.to_string()),
        };
        cmd.arg("--").arg(program);
        cmd
    }
}

/// Programs that rewrite the account database (/etc/passwd, group, shadow,
/// gshadow). Test cases run in parallel, and concurrent runs of these were
/// seen to lose each other's changes (`adduser` creating a group that its
/// own `useradd` then could not find), so the harness runs them one at a
/// time. An administrator on the device does the same.
const ACCOUNT_TOOLS: &[&str] = &[
    "useradd", "usermod", "userdel", "groupadd", "groupmod", "groupdel", "adduser", "deluser",
    "addgroup", "delgroup", "chpasswd", "chage", "passwd", "gpasswd",
];

static ACCOUNT_DB: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Hold this to change the account database (the harness's account tools
/// and the journal's replay take it).
pub fn account_db_lock() -> std::sync::MutexGuard<'static, ()> {
    ACCOUNT_DB.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run `cmd` (stdin from `input`, if any), record it, and return what it did.
/// Fails if the program could not be started, or if its case's time ran
/// out first (see [`crate::runtime::deadline`]): then the program and its children
/// are killed and the evidence shows what it wrote until then. A non-zero
/// exit is data.
pub fn run(ev: &Evidence, cmd: &mut Command, input: Option<&str>) -> Result<Ran> {
    run_recorded(ev, cmd, input, Stdout::Shown)
}

/// Like [`run_ok`], for a command whose standard output holds secrets
/// (`getent shadow`: password hashes): the evidence records the command,
/// its status and how many lines it printed, not what it printed.
pub fn run_ok_withholding_stdout(ev: &Evidence, cmd: &mut Command) -> Result<Ran> {
    let ran = run_recorded(ev, cmd, None, Stdout::Withheld)?;
    let quoted = ran.stderr.clone();
    succeeded(ev, cmd, ran, &quoted)
}

/// `ran`, or an error naming the command, its status and `quoted` (what it
/// printed that may be shown) when it failed.
fn succeeded(ev: &Evidence, cmd: &Command, ran: Ran, quoted: &str) -> Result<Ran> {
    if !ran.success {
        bail!(
            "`{}` failed ({}): {}",
            ev.mask(&command_line(cmd)),
            ran.code
                .map_or_else(|| "killed".to_owned(), |c| format!("exit {c}")),
            ev.mask(quoted.trim())
        );
    }
    Ok(ran)
}

/// Whether a command's standard output goes into the evidence.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stdout {
    Shown,
    Withheld,
}

fn run_recorded(
    ev: &Evidence,
    cmd: &mut Command,
    input: Option<&str>,
    policy: Stdout,
) -> Result<Ran> {
    let line = command_line(cmd);
    let program = std::path::Path::new(cmd.get_program());
    let account_tool = program
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| ACCOUNT_TOOLS.contains(&n));
    let _serialised = account_tool.then(account_db_lock);
    let deadline = deadline::current();
    let waited = spawn_and_wait(cmd, input, deadline.as_deref())
        .with_context(|| format!("cannot run `{line}`"))?;
    let lossy = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let output = match (waited, &deadline) {
        (Waited::Exited(output), _) => output,
        (Waited::Cut { stdout, stderr }, Some(deadline)) => {
            let shown = match policy {
                Stdout::Shown => lossy(&stdout),
                Stdout::Withheld => "(not shown: it holds secrets)".to_owned(),
            };
            ev.command(
                &line,
                "killed: the test case's time ran out",
                &shown,
                &lossy(&stderr),
            );
            return Err(deadline.cut(&format!("running `{}`", ev.mask(&line))));
        }
        (Waited::TooLate, Some(deadline)) => {
            ev.command(
                &line,
                "not started: the test case's time had run out",
                "",
                "",
            );
            return Err(deadline.cut(&format!("about to run `{}`", ev.mask(&line))));
        }
        (_, None) => bail!("`{line}` was cut short without a time limit"),
    };
    let ran = Ran {
        success: output.status.success(),
        code: output.status.code(),
        stdout: lossy(&output.stdout),
        stderr: lossy(&output.stderr),
    };
    let shown = match policy {
        Stdout::Shown => ran.stdout.clone(),
        Stdout::Withheld => format!(
            "({} line(s), not shown: they hold secrets)\n",
            ran.stdout.lines().count()
        ),
    };
    ev.command(&line, &format!("{}", output.status), &shown, &ran.stderr);
    Ok(ran)
}

/// Run `cmd` for the undo of a killed run: no evidence (no case is
/// running), no account-database lock (the replay already holds it), the
/// output discarded. Did it succeed?
pub(crate) fn succeeds_quietly(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Like [`run`], but a non-zero exit is an error that quotes the output.
pub fn run_ok(ev: &Evidence, cmd: &mut Command, input: Option<&str>) -> Result<Ran> {
    let ran = run(ev, cmd, input)?;
    let quoted = ran.all_output();
    succeeded(ev, cmd, ran, &quoted)
}

/// Shorthand for `run_ok` of a program and its arguments.
pub fn sh(ev: &Evidence, program: &str, args: &[&str]) -> Result<Ran> {
    run_ok(ev, Command::new(program).args(args), None)
}

/// How a program's run ended.
enum Waited {
    Exited(Output),
    /// Killed when its case's time ran out, with what it wrote until then.
    Cut {
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    /// Not started: the case's time was already up. A program killed right
    /// after its start (`useradd` halfway) would only leave a mess.
    TooLate,
}

/// How long a wait for a program goes without looking at its case's
/// deadline again: the run may stop the case before its limit.
const LOOK_AGAIN: Duration = Duration::from_millis(500);

/// Run the program to its end, feeding `input` and collecting its output,
/// but no longer than `deadline` allows.
fn spawn_and_wait(
    cmd: &mut Command,
    input: Option<&str>,
    deadline: Option<&Deadline>,
) -> std::io::Result<Waited> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if deadline.is_some_and(|d| d.time_left().is_zero()) {
        return Ok(Waited::TooLate);
    }
    let mut child = cmd.spawn()?;
    let mut pipes = Pipes {
        stdin: input.and(child.stdin.take()),
        input: input.unwrap_or_default().as_bytes(),
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        out: Vec::new(),
        err: Vec::new(),
    };
    // After the pipes close the program normally is about to exit: look
    // again soon, then less often.
    let mut pause = Duration::from_millis(1);
    loop {
        let left = deadline.map(Deadline::time_left);
        if left.is_some_and(|l| l.is_zero()) {
            // The whole tree: a shell's children would keep the output
            // pipes open, and a hung grandchild is as much the case's.
            crate::runtime::process::kill_tree(Pid::from_raw(child.id() as i32));
            for _ in 0..100 {
                if child.try_wait()?.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            return Ok(Waited::Cut {
                stdout: pipes.out,
                stderr: pipes.err,
            });
        }
        if pipes.open() {
            pipes.exchange(left.map(|l| l.min(LOOK_AGAIN)))?;
            continue;
        }
        let status = match (child.try_wait()?, left) {
            (Some(status), _) => status,
            (None, None) => child.wait()?,
            (None, Some(left)) => {
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(LOOK_AGAIN / 10);
                continue;
            }
        };
        return Ok(Waited::Exited(Output {
            status,
            stdout: pipes.out,
            stderr: pipes.err,
        }));
    }
}

/// The pipes to a running program: its input still to write, its output
/// read so far.
struct Pipes<'a> {
    stdin: Option<ChildStdin>,
    input: &'a [u8],
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    out: Vec<u8>,
    err: Vec<u8>,
}

impl Pipes<'_> {
    fn open(&self) -> bool {
        self.stdin.is_some() || self.stdout.is_some() || self.stderr.is_some()
    }

    /// Wait until a pipe is ready (at most `timeout`; None: no limit) and
    /// move what it is ready for.
    fn exchange(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        use std::io::ErrorKind;
        let timeout = match timeout {
            None => PollTimeout::NONE,
            Some(t) => PollTimeout::try_from(t).unwrap_or(PollTimeout::MAX),
        };
        let ready = {
            // Which pipe (0 stdin, 1 stdout, 2 stderr) each entry polls.
            let mut which = Vec::new();
            let mut fds = Vec::new();
            if let Some(p) = &self.stdin {
                which.push(0);
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLOUT));
            }
            if let Some(p) = &self.stdout {
                which.push(1);
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            if let Some(p) = &self.stderr {
                which.push(2);
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            let mut ready = [false; 3];
            for (i, fd) in which.into_iter().zip(&fds) {
                ready[i] = fd.revents().is_some_and(|r| !r.is_empty());
            }
            ready
        };
        if ready[0] {
            if let Some(stdin) = &mut self.stdin {
                // Up to PIPE_BUF at a time: a pipe that polls writable
                // takes that much without blocking.
                let chunk = &self.input[..self.input.len().min(4096)];
                match stdin.write(chunk) {
                    Ok(n) => self.input = &self.input[n..],
                    // The program exited or closed its input without
                    // reading it all: its exit status tells the rest.
                    Err(e) if e.kind() == ErrorKind::BrokenPipe => self.input = &[],
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
                if self.input.is_empty() {
                    self.stdin = None;
                }
            }
        }
        read_ready(ready[1], &mut self.stdout, &mut self.out)?;
        read_ready(ready[2], &mut self.stderr, &mut self.err)
    }
}

/// Read what a ready output pipe has; close it at its end.
fn read_ready(
    ready: bool,
    pipe: &mut Option<impl Read>,
    into: &mut Vec<u8>,
) -> std::io::Result<()> {
    let Some(p) = pipe.as_mut().filter(|_| ready) else {
        return Ok(());
    };
    let mut buf = [0u8; 8192];
    match p.read(&mut buf) {
        Ok(0) => *pipe = None,
        Ok(n) => into.extend_from_slice(&buf[..n]),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Is `program` installed (found on PATH or the sbin directories root uses)?
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|p| p.is_file());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_are_not_utf8_are_refused_by_name() {
        use std::os::unix::ffi::OsStrExt;
        use std::path::Path;
        assert_eq!(path_str(Path::new("/etc/a b")).unwrap(), "/etc/a b");
        let bad = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/k\xff"));
        let e = path_str(bad).unwrap_err().to_string();
        assert!(e.contains("/tmp/k") && e.contains("not valid UTF-8"), "{e}");
    }

    #[test]
    fn setpriv_command_lines() {
        let cmd = Setpriv::new(1001, 1002, Groups::OfAccount).command("id");
        assert_eq!(
            command_line(&cmd),
            "setpriv --reuid 1001 --regid 1002 --init-groups -- id"
        );
        let mut cmd = Setpriv::new(7, 8, Groups::None).command("su");
        cmd.args(["-", "al"]);
        assert_eq!(
            command_line(&cmd),
            "setpriv --reuid 7 --regid 8 --clear-groups -- su - al"
        );
    }

    #[test]
    fn command_lines_are_quoted_like_a_shell() {
        let mut c = Command::new("su");
        c.args(["-", "fr1-ab", "-c", "echo FR1-$(id -un)-END", "it's"]);
        assert_eq!(
            command_line(&c),
            r"su - fr1-ab -c 'echo FR1-$(id -un)-END' 'it'\''s'"
        );
    }

    fn with_deadline<T>(limit: Duration, cleanup: Duration, f: impl FnOnce() -> T) -> T {
        deadline::install(Some(Deadline::new(limit, cleanup)));
        let result = f();
        deadline::install(None);
        result
    }

    #[test]
    fn input_and_output_pass_whole_under_a_deadline() {
        let ev = Evidence::new("t");
        let big = "x".repeat(200_000) + "\n";
        let ran = with_deadline(Duration::from_secs(30), Duration::ZERO, || {
            run(&ev, Command::new("sh").args(["-c", "cat"]), Some(&big)).unwrap()
        });
        assert!(ran.success);
        assert_eq!(ran.stdout, big);
        // A program that does not read its input is no error.
        let ran = with_deadline(Duration::from_secs(30), Duration::ZERO, || {
            run(&ev, Command::new("sh").args(["-c", "exit 3"]), Some(&big)).unwrap()
        });
        assert_eq!(ran.code, Some(3));
    }

    #[test]
    fn a_program_is_killed_with_its_children_when_the_time_runs_out() {
        let ev = Evidence::new("t");
        let started = std::time::Instant::now();
        let (err, after) = with_deadline(Duration::from_secs(1), Duration::from_secs(10), || {
            let err = run(
                &ev,
                Command::new("sh").args(["-c", "sleep 100 & echo child $!; wait"]),
                None,
            )
            .unwrap_err();
            // The guards' cleanup still runs once the limit was reached.
            (err, run(&ev, &mut Command::new("true"), None))
        });
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            err.to_string(),
            "time limit of 1 s reached while running `sh -c 'sleep 100 & echo child $!; wait'`"
        );
        assert!(err.downcast_ref::<deadline::TimeLimit>().is_some());
        assert!(after.is_ok_and(|r| r.success));
        let log = ev.render();
        assert!(
            log.contains("killed: the test case's time ran out"),
            "{log}"
        );
        let child: i32 = log
            .split("| child ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("no child PID in the evidence:\n{log}"));
        let alive = || crate::runtime::proc_stat::ProcStat::read(child).is_some_and(|s| s.live());
        for _ in 0..100 {
            if !alive() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(), "the shell's sleep {child} still runs");
    }

    #[test]
    fn past_the_limit_the_next_program_is_not_started_but_cleanup_runs() {
        let ev = Evidence::new("t");
        let (first, second) = with_deadline(Duration::ZERO, Duration::from_secs(10), || {
            (
                run(&ev, Command::new("sh").args(["-c", "exit 9"]), None),
                run(&ev, &mut Command::new("true"), None),
            )
        });
        let err = first.unwrap_err().to_string();
        assert!(
            err.contains("reached while about to run `sh -c 'exit 9'`"),
            "{err}"
        );
        assert!(ev
            .render()
            .contains("not started: the test case's time had run out"));
        assert!(second.is_ok_and(|r| r.success));
    }

    #[test]
    fn a_failing_command_is_an_error_with_its_output() {
        let ev = Evidence::new("t");
        let err = run_ok(
            &ev,
            Command::new("sh").args(["-c", "echo nope >&2; exit 3"]),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("exit 3") && err.contains("nope"), "{err}");
    }
}
