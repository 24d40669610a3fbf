//! Drivers and sinks at the edge of the system: the real-time audio driver, the latency
//! measurement and the serial trigger line.
//!
//! Owns: everything that touches a device. May call: [`crate::engine`] (it drives a
//! [`crate::engine::Processor`]) and [`crate::profile`]. Nothing below the engine knows these
//! exist.

pub mod audio;
pub mod latency;
pub mod serial_trigger;
