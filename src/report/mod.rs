//! Reporters: each turns the run's records into one output format. They run
//! after execution and never influence it.

pub mod console;
pub mod evidence;
pub mod fr1;
pub mod html;
pub mod junit;
pub mod lava;
pub mod markdown;
