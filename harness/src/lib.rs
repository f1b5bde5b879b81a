//! System plumbing shared by the FR-1 test cases, in four layers; a layer
//! imports only the layers below it (checked by `tests/layers.rs`):
//!
//! 1. [`runtime`]: test cases, evidence, deadlines, commands, processes and
//!    the undo journal's storage;
//! 2. [`facts`]: the system's configuration, read without changing it;
//! 3. [`actors`]: what a test sets up and takes away again (accounts, file
//!    guards, servers, network namespaces, PKIs);
//! 4. [`flows`]: the real authentication flows on a pseudo-terminal.
//!
//! Above them, [`runner_api`] is what the suite's runner (and only it) uses:
//! the journal's activation and replay, the run's scope, the time-limit
//! watchdog's hooks. The undo of each kind of change lives with the
//! resource that makes it and is dispatched from one place (`undo`).

pub mod actors;
pub mod facts;
pub mod flows;
pub mod runner_api;
pub mod runtime;
mod undo;

pub use actors::file_guard::FileGuard;
pub use actors::sshd::PrivateSshd;
pub use actors::user::TestUser;
pub use flows::dialogue::AuthOutcome;
pub use flows::pty::Terminal;
pub use runtime::case::{Case, Control, NotApplicable, Skip, Verdict};
pub use runtime::evidence::Evidence;
