//! A PAM stack played as libpam's dispatcher plays it, for given module
//! results: which lines ran, whether the stack ended in success, and the
//! lines whose success decided it.
//!
//! The rules are libpam's (`_pam_dispatch_aux`), for a first pass through
//! a stack (auth, account, the first password pass): `required` and
//! `optional` add to the result, `sufficient` and `done` end it, `requisite`
//! and `die` end it in failure, a jump skips lines without touching the
//! result. A substack counts as one line for a jump in the stack around it,
//! a jump inside it cannot leave it, `done` and `die` end only the substack,
//! and `reset` goes back to the state it began with.
//!
//! Callers enumerate the results a line can have ([`every_way`]) and ask
//! each way through the stack what it proves: [`crate::facts::pam_grants`]
//! (through without an authenticator), [`crate::facts::pam_exemptions`]
//! (through without a module a requirement depends on).

use crate::facts::pam::PamLine;
use anyhow::{ensure, Result};

/// Stacks with more lines of several possible results than this are not
/// played through exhaustively (3^n ways); none of a real image comes near.
pub const MAX_UNDECIDED: usize = 14;

/// What a module returned, as far as the stack's control is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Success,
    /// PAM_IGNORE.
    Ignore,
    /// Any failure code (auth_err, perm_denied, user_unknown, …).
    Failure,
}

/// What libpam does with a module's return value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Ignore,
    Ok,
    Done,
    Bad,
    Die,
    Reset,
    Jump(usize),
}

/// One way through a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Played {
    pub success: bool,
    /// Indexes of the module lines that ran, in order.
    pub ran: Vec<usize>,
    /// Lines that succeeded and ended the stack (`sufficient`, `done`) or
    /// jumped; with none, every line that succeeded.
    pub deciding: Vec<usize>,
}

/// Every combination of the results `choices(line)` allows, played: the
/// results of each way, with the results it was played with. A stack with
/// more than [`MAX_UNDECIDED`] lines of several results is an error, never
/// "nothing found".
pub fn every_way(
    stack: &[PamLine],
    choices: impl Fn(&PamLine) -> Vec<Returned>,
) -> Result<Vec<(Vec<Returned>, Played)>> {
    let choices: Vec<Vec<Returned>> = stack
        .iter()
        .map(|l| {
            let c = choices(l);
            // A substack's own line runs no module; any value does.
            if l.is_substack() || c.is_empty() {
                vec![Returned::Ignore]
            } else {
                c
            }
        })
        .collect();
    let undecided = choices.iter().filter(|c| c.len() > 1).count();
    ensure!(
        undecided <= MAX_UNDECIDED,
        "the stack has {undecided} lines that may succeed or fail, more than the {MAX_UNDECIDED} the suite plays through"
    );
    let mut out = Vec::new();
    let mut picks = vec![0usize; stack.len()];
    loop {
        let returned: Vec<Returned> = picks.iter().zip(&choices).map(|(&i, c)| c[i]).collect();
        let played = play(stack, &returned);
        out.push((returned, played));
        // Next combination (odometer over the choices).
        let mut i = 0;
        loop {
            if i == picks.len() {
                return Ok(out);
            }
            picks[i] += 1;
            if picks[i] < choices[i].len() {
                break;
            }
            picks[i] = 0;
            i += 1;
        }
    }
}

/// The stack's overall impression so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impression {
    Undecided,
    Positive,
    Negative,
}

/// Play `stack` with each module line returning `returned[i]`.
pub fn play(stack: &[PamLine], returned: &[Returned]) -> Played {
    let mut impression = Impression::Undecided;
    let mut success = false;
    // The state each substack level began with, for `reset`.
    let mut began_with = vec![(Impression::Undecided, false)];
    let mut previous_level = 0;
    let mut ran = Vec::new();
    let mut deciding = Vec::new();
    let mut successes = Vec::new();
    let mut i = 0;
    while i < stack.len() {
        let level = stack[i].level;
        if previous_level < level {
            began_with.resize(level + 1, (impression, success));
            began_with[level] = (impression, success);
        }
        previous_level = level;
        if stack[i].is_substack() {
            i += 1;
            continue;
        }
        ran.push(i);
        let r = returned[i];
        if r == Returned::Success {
            successes.push(i);
        }
        let act = action(&stack[i].control, r);
        let mut next = i + 1;
        match act {
            Action::Ignore => {}
            Action::Reset => (impression, success) = began_with[level.min(began_with.len() - 1)],
            Action::Jump(n) => {
                if r == Returned::Success {
                    deciding.push(i);
                }
                let (target, short) = skip(stack, i, n);
                if short {
                    // libpam: "bad jump in stack".
                    impression = Impression::Negative;
                    success = false;
                }
                next = target;
            }
            Action::Ok | Action::Done => {
                if impression == Impression::Undecided
                    || (impression == Impression::Positive && success)
                {
                    impression = Impression::Positive;
                    success = r == Returned::Success;
                }
                if act == Action::Done && impression == Impression::Positive {
                    if r == Returned::Success {
                        deciding.push(i);
                    }
                    next = end_of_level(stack, i);
                }
            }
            Action::Bad | Action::Die => {
                if impression != Impression::Negative {
                    impression = Impression::Negative;
                    success = false;
                }
                if act == Action::Die {
                    next = end_of_level(stack, i);
                }
            }
        }
        i = next;
    }
    let success = impression == Impression::Positive && success;
    if success && deciding.is_empty() {
        deciding = successes;
    }
    Played {
        success,
        ran,
        deciding,
    }
}

/// Where a jump of `n` from line `from` lands: `n` lines of its level
/// further on, a substack with its lines counting as one; `true` when the
/// level ends first (a jump cannot leave its substack).
fn skip(stack: &[PamLine], from: usize, mut n: usize) -> (usize, bool) {
    let level = stack[from].level;
    let mut h = from;
    while h + 1 < stack.len() && stack[h + 1].level >= level && n > 0 {
        h += 1;
        while h + 1 < stack.len() && stack[h + 1].level > level {
            h += 1;
        }
        n -= 1;
    }
    (h + 1, n > 0)
}

/// The first line after the level of line `from` ends (`done`, `die`).
fn end_of_level(stack: &[PamLine], from: usize) -> usize {
    let level = stack[from].level;
    let mut h = from;
    while h + 1 < stack.len() && stack[h + 1].level >= level {
        h += 1;
    }
    h + 1
}

/// The action `control` takes for `returned`.
fn action(control: &str, returned: Returned) -> Action {
    let simple = |s: Action, ignore: Action, f: Action| match returned {
        Returned::Success => s,
        Returned::Ignore => ignore,
        Returned::Failure => f,
    };
    match control {
        "required" => simple(Action::Ok, Action::Ignore, Action::Bad),
        "requisite" => simple(Action::Ok, Action::Ignore, Action::Die),
        "sufficient" => simple(Action::Done, Action::Ignore, Action::Ignore),
        "optional" => simple(Action::Ok, Action::Ignore, Action::Ignore),
        bracket => bracket_action(bracket, returned),
    }
}

/// `[value=action …]`: success and ignore look up their own value, a
/// failure the usual failure values (auth_err first) and then `default`.
/// An unparsable control is `bad` (libpam treats the line as broken).
fn bracket_action(control: &str, returned: Returned) -> Action {
    let Some(inner) = control.strip_prefix('[').and_then(|c| c.strip_suffix(']')) else {
        return Action::Bad;
    };
    let pairs: Vec<(&str, &str)> = inner
        .split_whitespace()
        .filter_map(|p| p.split_once('='))
        .collect();
    let lookup = |value: &str| pairs.iter().find(|(k, _)| *k == value).map(|(_, a)| *a);
    let keys: &[&str] = match returned {
        Returned::Success => &["success"],
        Returned::Ignore => &["ignore"],
        Returned::Failure => &["auth_err", "perm_denied", "user_unknown"],
    };
    let named = keys
        .iter()
        .find_map(|k| lookup(k))
        .or_else(|| lookup("default"));
    match named {
        Some("ignore") => Action::Ignore,
        Some("ok") => Action::Ok,
        Some("done") => Action::Done,
        Some("bad") => Action::Bad,
        Some("die") => Action::Die,
        Some("reset") => Action::Reset,
        Some(n) => n.parse().map(Action::Jump).unwrap_or(Action::Bad),
        // Unlisted with no default: libpam's default action is `bad`.
        None => Action::Bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::pam;
    use Returned::*;

    use pam::tests::auth_stack_of as stack_of;

    /// Results by module name; anything unnamed fails.
    fn with(stack: &[PamLine], results: &[(&str, Returned)]) -> Vec<Returned> {
        stack
            .iter()
            .map(|l| {
                results
                    .iter()
                    .find(|(m, _)| *m == l.module)
                    .map_or(Failure, |(_, r)| *r)
            })
            .collect()
    }

    #[test]
    fn a_substack_counts_as_one_line_for_a_jump_around_it() {
        let stack = stack_of(&[
            (
                "svc",
                "auth [success=1 default=ignore] pam_succeed_if.so user ingroup staff\n\
                 auth substack checks\n\
                 auth required pam_permit.so\n",
            ),
            (
                "checks",
                "auth required pam_unix.so\nauth required pam_faillock.so authfail\n",
            ),
        ]);
        assert_eq!(stack.iter().filter(|l| l.is_substack()).count(), 1);
        let played = play(
            &stack,
            &with(
                &stack,
                &[("pam_succeed_if.so", Success), ("pam_permit.so", Success)],
            ),
        );
        // Flattened, the jump would land on pam_faillock and fail.
        assert!(played.success);
        assert!(!played.ran.iter().any(|&i| stack[i].module == "pam_unix.so"));
    }

    #[test]
    fn done_and_die_end_only_the_substack() {
        let stack = stack_of(&[
            ("svc", "auth substack inner\nauth requisite pam_deny.so\n"),
            (
                "inner",
                "auth sufficient pam_permit.so\nauth required pam_unix.so\n",
            ),
        ]);
        let played = play(&stack, &with(&stack, &[("pam_permit.so", Success)]));
        // pam_permit's `sufficient` ends the substack, not the stack: the
        // pam_deny after it still runs.
        assert!(!played.success);
        assert!(played.ran.iter().any(|&i| stack[i].module == "pam_deny.so"));
    }

    #[test]
    fn a_jump_cannot_leave_its_substack() {
        let stack = stack_of(&[
            ("svc", "auth substack inner\nauth required pam_permit.so\n"),
            (
                "inner",
                "auth [success=2 default=ignore] pam_succeed_if.so user ingroup staff\n\
                 auth required pam_unix.so\n",
            ),
        ]);
        let played = play(
            &stack,
            &with(
                &stack,
                &[("pam_succeed_if.so", Success), ("pam_permit.so", Success)],
            ),
        );
        assert!(!played.success, "a bad jump fails the stack");
    }

    #[test]
    fn control_words_are_read_case_insensitively() {
        let stack = stack_of(&[(
            "svc",
            "auth Sufficient pam_permit.so\nauth REQUIRED pam_deny.so\n",
        )]);
        assert!(play(&stack, &with(&stack, &[("pam_permit.so", Success)])).success);
    }

    #[test]
    fn every_way_refuses_a_stack_too_large() {
        let text = "auth optional pam_env.so\n".repeat(MAX_UNDECIDED + 1);
        let stack = stack_of(&[("svc", &text)]);
        assert!(every_way(&stack, |_| vec![Success, Ignore, Failure]).is_err());
    }
}
