//! Layer 1 of 4: what every other layer runs on, and imports nothing above
//! it. What a test case is and how it is timed ([`case`], [`deadline`]), its
//! evidence log ([`evidence`]), running programs ([`command`]) and handling
//! processes ([`process`]), random passwords ([`password`]), and the undo
//! journal's storage ([`journal`]) with the run's own scope ([`run_scope`]).
//!
//! - [`case`]: what a test case is (ID, requirement, verdict, body, the
//!   negative controls that make it fail) and how it says "skip";
//! - [`deadline`]: a case's time limit, which every wait honours;
//! - [`evidence`]: the per-test-case log an assessor reads;
//! - [`command`]: running a program and recording it in the evidence;
//! - [`process`]: finding, watching and killing processes (/proc), and
//!   [`proc_stat`]: one process's /proc/PID/stat;
//! - [`password`]: random passwords and tokens;
//! - [`journal`]: the crash-safe record of every change, before it is made;
//! - [`run_scope`]: the state a run leaves behind as a whole (faillock tallies).

pub mod case;
pub mod command;
pub mod deadline;
pub mod evidence;
pub(crate) mod journal;
pub mod password;
pub(crate) mod proc_stat;
pub(crate) mod process;
pub(crate) mod run_scope;
