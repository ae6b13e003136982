//! Back ends: each takes the checked model ([`crate::ir::Model`] and
//! [`crate::valid::Network`]) and prints it; none re-validates.

pub mod dsl;
pub mod yaml;
pub mod dot;
pub mod table;
pub mod rust;
