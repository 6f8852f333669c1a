//! What is true now: committed versions (compact), source versions, the
//! assessment of every unit, and the snapshot holding them.

pub(crate) mod committed;
pub(crate) mod snapshot;
pub(crate) mod sources;
pub(crate) mod status;
