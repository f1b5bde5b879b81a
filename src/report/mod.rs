//! Reporters: each turns the run's records into one output format. They run
//! after execution and never influence it.

pub mod console;
pub mod evidence;
pub mod junit;
pub mod lava;
