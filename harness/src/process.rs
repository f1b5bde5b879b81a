//! Processes owned by an account, found through /proc (procps is not
//! guaranteed on a product image).

use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, Uid};
use std::fs;

/// PIDs whose real or effective UID is `uid`.
pub fn pids_of_uid(uid: Uid) -> Vec<Pid> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
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
        let members: Vec<Pid> = fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
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

/// The session ID (field 6 of /proc/PID/stat) of a process that is not a
/// zombie: zombies are already dead and only wait to be reaped. The command
/// name before it is parenthesised and may contain spaces and parentheses.
fn live_session_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(2)?.parse().ok()
}

/// `root` and all its live descendants, found through the parent links in
/// /proc. A daemon's per-connection children call setsid(), so they are
/// not in its session, but they stay its descendants while it lives.
pub fn process_tree(root: Pid) -> Vec<Pid> {
    let parents: Vec<(i32, i32)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
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

/// The parent PID (field 4 of /proc/PID/stat) of a process that is not a
/// zombie.
fn live_parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.next()?.parse().ok()
}
