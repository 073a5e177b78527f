//! The generators, one module per area of attack. Each returns the files it
//! makes, by path relative to fixtures/vectors/ (`NAME.airlock`, or
//! `NAME/volume-….airlock` for a split bundle); the `.toml` case files that
//! use them are written by hand.

mod basics;
mod chunks;
mod crashes;
mod memory;
mod mirror;
mod report;
mod staging;

use crate::base::Base;

/// A generated file: its path under fixtures/vectors/ and its bytes.
pub type Made = (String, Vec<u8>);

pub fn all(base: &Base) -> Vec<Made> {
    let areas: [fn(&Base) -> Vec<Made>; 7] =
        [basics::cases, crashes::cases, report::cases, mirror::cases, memory::cases, staging::cases, chunks::cases];
    areas.iter().flat_map(|area| area(base)).collect()
}
