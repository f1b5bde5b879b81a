//! Processes: those owned by an account and process trees, found through
//! /proc (procps is not guaranteed on a product image). The servers the
//! harness starts are [`crate::actors::server::ServerProcess`].

use crate::runtime::proc_stat::ProcStat;
use anyhow::Result;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, Uid};
use std::fs;
use std::time::{Duration, Instant};

/// Every process's PID, from the numbered entries of /proc (none if /proc
/// cannot be read).
fn all_pids() -> impl Iterator<Item = i32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
}

/// PIDs of the processes whose command name (/proc/PID/comm) is `name`.
pub fn pids_named(name: &str) -> Vec<Pid> {
    all_pids()
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        })
        .map(Pid::from_raw)
        .collect()
}

/// End the processes (other than this one) that serve a TCP connection
/// from one of `peers`, e.g. the device sshd's per-connection processes
/// (`sshd: [accepted]`, `sshd-session: USER [priv]`, `[net]`) for a test
/// address. A client that went away while its address was banned, or
/// whose namespace was deleted under it, never told the server, which
/// keeps such a process until its own timeout (sshd: LoginGraceTime).
/// A listener has no peer, so it is never one of them. SIGTERM, then
/// SIGKILL for what is left after 2 s. Returns what it ended.
pub fn end_processes_holding(inodes: &[u64]) -> Vec<String> {
    if inodes.is_empty() {
        return Vec::new();
    }
    let me = std::process::id() as i32;
    let serving: Vec<(Pid, String)> = all_pids()
        .filter(|pid| *pid != me && holds_socket(Pid::from_raw(*pid), inodes))
        .map(|pid| (Pid::from_raw(pid), command_line_of(pid)))
        .collect();
    for (pid, _) in &serving {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while serving
        .iter()
        .any(|(pid, _)| live_parent_of(pid.as_raw()).is_some())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    for (pid, _) in &serving {
        if live_parent_of(pid.as_raw()).is_some() {
            let _ = kill(*pid, Signal::SIGKILL);
        }
    }
    serving
        .into_iter()
        .map(|(pid, line)| format!("process {pid} ({line})"))
        .collect()
}

/// Does `pid` hold an open file descriptor on one of the sockets `inodes`
/// (as /proc/net/tcp names them)?
pub fn holds_socket(pid: Pid, inodes: &[u64]) -> bool {
    let sockets: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| fs::read_link(e.path()).ok())
        .any(|t| sockets.iter().any(|s| t.as_os_str() == s.as_str()))
}

/// End (SIGKILL) the forked copies of this program that hold `path` open:
/// processes running the same executable, other than this one, with a
/// descriptor on it. A run killed between a fork and the child's exec
/// leaves such a child, which keeps the parent's run lock and never execs.
/// The caller knows the run that took the lock has ended; a copy that
/// still holds it is that run's, not a live run's. Returns what it ended.
pub fn end_copies_holding(path: &std::path::Path) -> Vec<String> {
    let me = std::process::id() as i32;
    let Ok(exe) = fs::read_link("/proc/self/exe") else {
        return Vec::new();
    };
    let holds = |pid: i32| {
        fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| fs::read_link(e.path()).ok())
            .any(|t| t == path)
    };
    all_pids()
        .filter(|&pid| pid != me)
        .filter(|pid| fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == exe))
        .filter(|&pid| holds(pid))
        .filter_map(|pid| {
            let line = command_line_of(pid);
            kill(Pid::from_raw(pid), Signal::SIGKILL).ok()?;
            Some(format!("process {pid} ({line})"))
        })
        .collect()
}

/// A process's command line as `ps` shows it: its arguments joined by
/// spaces, or a daemon's retitled line such as `sshd: USER [priv]`.
fn command_line_of(pid: i32) -> String {
    arguments_of(Pid::from_raw(pid)).join(" ")
}

/// A process's arguments (/proc/PID/cmdline), the program first; none once
/// it has ended.
pub fn arguments_of(pid: Pid) -> Vec<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw)
        .split('\0')
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

/// PIDs whose real or effective UID is `uid`.
pub fn pids_of_uid(uid: Uid) -> Vec<Pid> {
    all_pids()
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|status| {
                    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
                    let mut ids = line.split_whitespace().skip(1);
                    let real = ids.next()?.parse::<u32>().ok()?;
                    let effective = ids.next()?.parse::<u32>().ok()?;
                    Some(real == uid.as_raw() || effective == uid.as_raw())
                })
                .unwrap_or(false)
        })
        .map(Pid::from_raw)
        .collect()
}

/// SIGKILL every process of `uid`, repeatedly until none is left (a dying
/// session may fork once more). Returns how many were signalled. Never
/// called for a UID below 1000 or root by the harness.
pub fn kill_all_of_uid(uid: Uid) -> usize {
    let mut signalled = 0;
    for _ in 0..20 {
        let pids = pids_of_uid(uid);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            if kill(pid, Signal::SIGKILL).is_ok() {
                signalled += 1;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    signalled
}

/// SIGKILL every process whose session ID is `sid` (a PTY session leader's
/// PID): a login shell's children die with it, even if they changed
/// process group.
pub fn kill_session(sid: Pid) {
    for _ in 0..20 {
        let members: Vec<Pid> = all_pids()
            .filter(|pid| live_session_of(*pid) == Some(sid.as_raw()))
            .map(Pid::from_raw)
            .collect();
        if members.is_empty() {
            return;
        }
        for pid in members {
            let _ = kill(pid, Signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The session ID of a process that is not a zombie: zombies are already
/// dead and only wait to be reaped.
fn live_session_of(pid: i32) -> Option<i32> {
    ProcStat::read(pid)
        .filter(ProcStat::live)
        .map(|s| s.session)
}

/// `root` and all its live descendants, found through the parent links in
/// /proc. A daemon's per-connection children call setsid(), so they are
/// not in its session, but they stay its descendants while it lives.
pub fn process_tree(root: Pid) -> Vec<Pid> {
    let parents: Vec<(i32, i32)> = all_pids()
        .filter_map(|pid| Some((pid, live_parent_of(pid)?)))
        .collect();
    let mut tree = Vec::new();
    if live_parent_of(root.as_raw()).is_some() {
        tree.push(root.as_raw());
    }
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    tree.into_iter().map(Pid::from_raw).collect()
}

/// Live processes (not this one) whose command line, its arguments joined
/// by spaces, contains `needle`.
pub fn pids_with_command_line(needle: &str) -> Vec<Pid> {
    let me = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me && live_parent_of(*pid).is_some())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|raw| {
                let line: Vec<u8> = raw
                    .iter()
                    .map(|b| if *b == 0 { b' ' } else { *b })
                    .collect();
                String::from_utf8_lossy(&line).contains(needle)
            })
        })
        .map(Pid::from_raw)
        .collect()
}

/// SIGKILL `root` and every descendant. The tree is first frozen with
/// SIGSTOP until it stops growing: a stopped process cannot fork, and a
/// child whose parent is killed first would be re-parented out of reach.
/// Returns how many processes were killed.
pub fn kill_tree(root: Pid) -> usize {
    let mut tree = process_tree(root);
    for _ in 0..20 {
        for pid in &tree {
            let _ = kill(*pid, Signal::SIGSTOP);
        }
        let again = process_tree(root);
        if again.iter().all(|p| tree.contains(p)) {
            break;
        }
        tree = again;
    }
    for pid in &tree {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    // SIGKILL is delivered asynchronously: wait (bounded) until they are
    // gone, so that the caller's next step (removing their user, their
    // files) does not race with them. Zombies count as gone.
    for _ in 0..100 {
        if tree.iter().all(|p| live_parent_of(p.as_raw()).is_none()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    tree.len()
}

/// The run lock's descriptor (-1: none). The lock is an flock on an open
/// file, which every fork shares until exec closes it (close-on-exec): a
/// PTY program that waits at its start gate before exec would keep the
/// lock of a killed suite until it dies too. Such children close it first.
static RUN_LOCK_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Set by the runner once it holds the run lock.
pub fn set_run_lock_fd(fd: std::os::fd::RawFd) {
    RUN_LOCK_FD.store(fd, std::sync::atomic::Ordering::SeqCst);
}

/// The run lock's descriptor, for a forked child to close before it waits.
pub(crate) fn run_lock_fd() -> std::os::fd::RawFd {
    RUN_LOCK_FD.load(std::sync::atomic::Ordering::SeqCst)
}

/// What was running before the suite began, none of it the suite's own.
/// Run as `sh -c 'start daemons; exec cip-iec-fr1-tests'` (a container's
/// PID 1, a LAVA or CI wrapper), the suite keeps the shell's PID and start
/// time, so the shell's daemons are its children, and daemons that fork
/// into the background are re-parented to it: neither a parent check nor
/// the process's own start time tells them apart.
#[derive(Debug, Clone, Default)]
pub struct Inherited {
    /// Every live process then, by PID and start time (clock ticks after
    /// boot, field 22 of /proc/PID/stat).
    processes: std::collections::BTreeSet<(i32, u64)>,
    /// The clock tick the suite began in: anything started in it or
    /// before is not the suite's.
    began: u64,
}

impl Inherited {
    /// Now: every live process, and the current clock tick.
    pub fn now() -> Self {
        Inherited {
            processes: all_pids()
                .filter_map(|pid| Some((pid, start_time(pid)?)))
                .collect(),
            began: boot_clock_ticks().unwrap_or(0),
        }
    }

    /// Was this process there before the suite began?
    fn holds(&self, pid: i32, start_time: u64) -> bool {
        start_time <= self.began || self.processes.contains(&(pid, start_time))
    }
}

static INHERITED: std::sync::OnceLock<Inherited> = std::sync::OnceLock::new();

/// Note what runs before the suite starts anything, as its first step:
/// [`kill_own_children`] leaves all of it alone.
pub fn note_inherited() {
    let _ = INHERITED.set(Inherited::now());
}

/// The time since boot in the clock ticks /proc/PID/stat gives start
/// times in (CLOCK_BOOTTIME, which the kernel counts start times from).
fn boot_clock_ticks() -> Option<u64> {
    use nix::time::{clock_gettime, ClockId};
    use nix::unistd::{sysconf, SysconfVar};
    let hz = u64::try_from(sysconf(SysconfVar::CLK_TCK).ok()??).ok()?;
    let now = clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?;
    let secs = u64::try_from(now.tv_sec()).ok()?;
    let nanos = u64::try_from(now.tv_nsec()).ok()?;
    Some(secs * hz + nanos * hz / 1_000_000_000)
}

/// Whether `pid` is a process this run started (a descendant of this
/// process that was not already running when the suite began, see
/// [`note_inherited`]): a private server of a test case, never a daemon of
/// the device, even when the suite runs as the parent of the device's
/// daemons (a container's PID 1).
pub fn started_by_this_run(pid: Pid) -> bool {
    let inherited = inherited();
    process_tree(Pid::this()).contains(&pid)
        && pid != Pid::this()
        && start_time(pid.as_raw()).is_some_and(|t| !inherited.holds(pid.as_raw(), t))
}

/// What ran before the suite, or where that was not noted, at least
/// nothing older than this process.
fn inherited() -> Inherited {
    INHERITED.get().cloned().unwrap_or_else(|| Inherited {
        processes: Default::default(),
        began: start_time(Pid::this().as_raw()).map_or(0, |t| t.saturating_sub(1)),
    })
}

/// SIGKILL every process this one started that still runs, with its
/// descendants: what a test case left behind, such as the program a body
/// the runner gave up on is stuck on. Says what it killed. What was
/// already running when the suite began ([`note_inherited`]) is left alone.
pub fn kill_own_children() -> Vec<String> {
    kill_children_of(Pid::this(), &inherited())
}

/// SIGKILL the live children of `parent` (with their descendants) that
/// were not already running when `inherited` was noted.
fn kill_children_of(parent: Pid, inherited: &Inherited) -> Vec<String> {
    let children: Vec<i32> = all_pids()
        .filter(|pid| live_parent_of(*pid) == Some(parent.as_raw()))
        .filter(|pid| start_time(*pid).is_some_and(|t| !inherited.holds(*pid, t)))
        .collect();
    children
        .into_iter()
        .map(|pid| {
            let name = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let killed = kill_tree(Pid::from_raw(pid));
            format!(
                "killed process {pid} ({}), {killed} with its children",
                name.trim()
            )
        })
        .collect()
}

/// The parent PID of a process that is not a zombie.
fn live_parent_of(pid: i32) -> Option<i32> {
    ProcStat::read(pid).filter(ProcStat::live).map(|s| s.ppid)
}

/// The start time of a process, which tells a process from a later one
/// that reuses its PID.
pub fn start_time(pid: i32) -> Option<u64> {
    ProcStat::read(pid).map(|s| s.start_time)
}

/// The journal's undo of a server recorded by PID (`Undo::KillProcess`):
/// kill it and its children if that PID still is the same process (same
/// start time). Says what it did.
pub(crate) fn kill_if_same(pid: i32, started: u64) -> Result<Option<String>> {
    if start_time(pid) != Some(started) {
        return Ok(None);
    }
    let killed = kill_tree(Pid::from_raw(pid));
    Ok(Some(format!(
        "killed process {pid} ({killed} with its children)"
    )))
}

/// The journal's undo of a server recorded by a path in its command line
/// (`Undo::KillByCommandLine`): kill those processes with their children.
/// Only the suite's own private paths: a damaged journal must never make
/// this kill anything else.
pub(crate) fn kill_by_command_line(needle: &str) -> Result<Option<String>> {
    if !needle.contains("/fr1-") {
        return Ok(Some(format!(
            "left processes matching {needle:?} alone: not a suite path"
        )));
    }
    let found = pids_with_command_line(needle);
    if found.is_empty() {
        return Ok(None);
    }
    let killed: usize = found.into_iter().map(kill_tree).sum();
    Ok(Some(format!(
        "killed {killed} process(es) started with {needle} (with their children)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_ran_before_the_suite_began_is_not_its_own() {
        use std::io::Write;
        // A shell stands in for `sh -c 'start daemons; exec the suite'`:
        // its daemon runs before the suite begins; what it starts
        // afterwards is its own.
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sleep 100 & read go; sleep 100 & wait"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let shell_pid = Pid::from_raw(shell.id() as i32);
        std::thread::sleep(Duration::from_millis(200));
        let daemon = process_tree(shell_pid)[1..].to_vec();
        assert_eq!(daemon.len(), 1, "{daemon:?}");
        let inherited = Inherited::now();
        // A new clock tick (10 ms at the usual 100 Hz) before the suite's own.
        std::thread::sleep(Duration::from_millis(50));
        let mut stdin = shell.stdin.take().unwrap();
        writeln!(stdin, "go").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let killed = kill_children_of(shell_pid, &inherited);
        assert_eq!(killed.len(), 1, "{killed:?}");
        assert!(live_parent_of(daemon[0].as_raw()) == Some(shell_pid.as_raw()));
        kill_tree(shell_pid);
        let _ = shell.wait();
    }

    #[test]
    fn children_are_killed_with_theirs() {
        // A shell stands in for the suite: its two children, one with a
        // child of its own.
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sleep 100 & sh -c 'sleep 100 & wait' & wait"])
            .spawn()
            .unwrap();
        let shell_pid = Pid::from_raw(shell.id() as i32);
        std::thread::sleep(std::time::Duration::from_millis(200));
        let tree = process_tree(shell_pid);
        assert_eq!(tree.len(), 4, "{tree:?}");
        let killed = kill_children_of(shell_pid, &Inherited::default());
        assert_eq!(killed.len(), 2, "{killed:?}");
        // The shell's children are gone, so its `wait` returns.
        assert!(shell.wait().unwrap().success());
        assert!(tree[1..]
            .iter()
            .all(|p| live_parent_of(p.as_raw()).is_none()));
    }
}
