//! `cairn-proto` will hold Cairn's gRPC API: the `.proto` files and the
//! tonic code generated from them, committed so users need no `protoc`.
//! It depends on nothing of Cairn's own; `cairn serve` (in `cairn-cli`)
//! converts engine types to these wire types at the edge.
//!
//! Empty until the API issue: nothing here is used yet.
#![deny(missing_docs)]
