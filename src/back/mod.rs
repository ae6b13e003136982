//! Back ends: each takes the checked model ([`crate::ir::Model`] and
//! [`crate::valid::Network`]) and prints it; none re-validates.

pub mod diff;
pub mod dot;
pub mod draw;
pub mod dsl;
pub mod onnx;
pub mod pytorch;
pub mod rust;
pub mod table;
pub mod yaml;
