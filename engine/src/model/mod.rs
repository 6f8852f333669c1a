//! The model: the opened project and what is computed from definitions
//! alone — the graph, selections, units, versions, partition keys — plus
//! where files live (storage) and who runs (whoami).

pub(crate) mod graph;
pub(crate) mod partition_index;
pub(crate) mod row_hash;
pub(crate) mod selection;
pub(crate) mod storage;
pub(crate) mod units;
pub(crate) mod version;
pub(crate) mod whoami;
pub(crate) mod workspace;
