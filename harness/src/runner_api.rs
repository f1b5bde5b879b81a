//! What the suite's runner uses of the harness, and only the runner: the
//! undo journal's activation and replay, the run's scope, the processes the
//! run inherited and left, the time-limit watchdog's hooks. Test cases use
//! the layers ([`crate::flows`], [`crate::actors`], [`crate::facts`],
//! [`crate::runtime`]); nothing here is for them.

pub use crate::runtime::case::{set_idle_hook, Body, IdlePhase};
pub use crate::runtime::command::{account_db_lock, find_program};
pub use crate::runtime::deadline::{self, Deadline};
pub use crate::runtime::evidence::{timed_checks, utc_text};
pub use crate::runtime::journal::{activate, close, pending, STATE_DIR};
pub use crate::runtime::process::{
    end_copies_holding, kill_own_children, note_inherited, set_run_lock_fd,
};
pub use crate::runtime::run_scope::RunScope;
pub use crate::undo::{replay, replay_holding, AccountDbGuard};

/// Enter the run's scope (see [`RunScope`]) for the faillock directory the
/// system's configuration names: the runtime layer cannot read that policy
/// itself, so it is asked here, above the layers.
pub fn enter_run_scope() -> anyhow::Result<RunScope> {
    RunScope::enter(crate::facts::faillock_policy::records_dir())
}
