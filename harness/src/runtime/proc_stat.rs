//! One process's line of /proc/PID/stat, read in one place.
//!
//! The line is `PID (COMM) STATE PPID PGRP SESSION ...`. COMM is the
//! program's name as the process chose it: it may hold spaces and
//! parentheses, so the fields are counted from the *last* `)`, never split
//! from the start of the line.
//!
//! A leaf: it imports nothing of the harness, so the journal, the process
//! helpers and the tests can all use it.

/// The fields of /proc/PID/stat the harness needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    /// Field 4.
    pub ppid: i32,
    /// Field 6.
    pub session: i32,
    /// Field 22: clock ticks after boot. With the PID it tells a process
    /// from a later one that reuses the PID.
    pub start_time: u64,
}

impl ProcStat {
    /// The process `pid` as /proc shows it now; `None` when it is gone (or
    /// its line cannot be read: then nothing can be said about it either).
    pub fn read(pid: i32) -> Option<Self> {
        let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Self::parse(&line)
    }

    /// One /proc/PID/stat line.
    pub fn parse(line: &str) -> Option<Self> {
        let after_comm = &line[line.rfind(')')? + 1..];
        // Field 3 (the state) is the first after COMM.
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).copied();
        let mut state = field(3)?.chars();
        let (Some(state), None) = (state.next(), state.next()) else {
            return None;
        };
        Some(ProcStat {
            state,
            ppid: field(4)?.parse().ok()?,
            session: field(6)?.parse().ok()?,
            start_time: field(22)?.parse().ok()?,
        })
    }

    /// Still running: a zombie is already dead and only waits to be
    /// reaped, and `X` is on its way out of the table.
    pub fn live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line as the kernel writes it, with `comm` and the fields from
    /// the state on.
    fn line(comm: &str, state: char, ppid: i32, session: i32, start: u64) -> String {
        format!(
            "4242 ({comm}) {state} {ppid} 4242 {session} 34816 4242 4194560 112 0 0 0 \
             0 0 0 0 20 0 1 0 {start} 8679424 848 18446744073709551615 1 1 0 0 0 0 0 \
             4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
    }

    #[test]
    fn plain_line() {
        let s = ProcStat::parse(&line("sshd", 'S', 1, 77, 123456)).unwrap();
        assert_eq!(
            s,
            ProcStat {
                state: 'S',
                ppid: 1,
                session: 77,
                start_time: 123456
            }
        );
        assert!(s.live());
    }

    #[test]
    fn comm_with_spaces_and_parentheses() {
        // A program may name itself anything up to 15 bytes, `)` included.
        for comm in ["a b", "x) S 9 9 9 (", "((", ") Z 1"] {
            let s = ProcStat::parse(&line(comm, 'R', 300, 301, 99)).unwrap();
            assert_eq!(
                (s.state, s.ppid, s.session, s.start_time),
                ('R', 300, 301, 99)
            );
        }
    }

    #[test]
    fn zombies_and_dead_are_not_live() {
        assert!(!ProcStat::parse(&line("sh", 'Z', 1, 1, 5)).unwrap().live());
        assert!(!ProcStat::parse(&line("sh", 'X', 1, 1, 5)).unwrap().live());
    }

    #[test]
    fn short_or_garbled_lines_are_none() {
        assert_eq!(ProcStat::parse(""), None);
        assert_eq!(ProcStat::parse("4242 (sh) S 1 2 3"), None);
        assert_eq!(ProcStat::parse("4242 sh S 1 2 3 4"), None);
        let garbled = line("sh", 'S', 1, 1, 5).replace(" 1 4242 ", " x 4242 ");
        assert_eq!(ProcStat::parse(&garbled), None);
    }

    #[test]
    fn this_process_is_read_live() {
        let me = ProcStat::read(std::process::id() as i32).unwrap();
        assert!(me.live());
        assert!(me.start_time > 0);
    }
}
