//! Lineage as pure algorithms and models: column lineage from logical
//! plans, OpenLineage events.

pub(crate) mod column_lineage;
pub(crate) mod openlineage;
pub(crate) mod openlineage_http;
