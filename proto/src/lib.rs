//! The `fog.v1` API: the Rust types and tonic stubs generated from `fog/v1/*.proto`.
//!
//! This crate holds the contract and nothing else. The generated code under
//! `src/gen/` is committed; `tests/bootstrap.rs` regenerates it with `protox`
//! (no system `protoc`) and fails when the committed copy has drifted. Run
//! `FOG_PROTO_BLESS=1 cargo test -p fog-proto --test bootstrap` to update it.

pub mod auth;
pub mod codec;

/// Package `fog.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    include!("gen/fog.v1.rs");
}

/// `impl prost_protovalidate::Validate` for every message with `buf.validate`
/// rules, generated from the annotations in the `.proto` files (standard rules
/// only: no CEL, so no interpreter on the hot path).
mod validate_impl {
    #![allow(clippy::all, unused_imports, unused_variables, unused_mut)]
    mod fog {
        pub use crate::v1;
    }
    include!("gen/validate_impl.rs");
}

pub use prost_protovalidate::Validate;

/// The encoded `FileDescriptorSet` of every `fog.v1` file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("gen/fog_descriptor.bin");

/// Names of the gRPC services in `fog.v1`, fully qualified.
pub const SERVICE_NAMES: &[&str] = &[
    "fog.v1.AuthService",
    "fog.v1.NodeService",
    "fog.v1.TaskService",
    "fog.v1.FleetService",
    "fog.v1.TopologyService",
    "fog.v1.SystemService",
];
