//! What is true now: committed versions (compact), source versions, the
//! assessment of every unit (freshness SLAs and health included), and the
//! snapshot holding them.

pub(crate) mod committed;
pub(crate) mod freshness;
pub(crate) mod snapshot;
pub(crate) mod sources;
pub(crate) mod status;
