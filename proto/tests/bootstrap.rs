//! Regenerates the Rust code from the `.proto` files and fails if the committed
//! copy in `src/gen/` differs. With `FOG_PROTO_BLESS=1` it writes the new copy.

use std::path::{Path, PathBuf};

const PROTOS: &[&str] = &[
    "fog/v1/auth.proto",
    "fog/v1/common.proto",
    "fog/v1/fleet.proto",
    "fog/v1/node.proto",
    "fog/v1/system.proto",
    "fog/v1/task.proto",
    "fog/v1/topology.proto",
];

fn generate(out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut compiler = protox::Compiler::new([root]).expect("include path");
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTOS).expect("the .proto files compile");
    // Encoded by protox itself, so the buf.validate options survive (prost_types would drop them).
    let encoded = compiler.encode_file_descriptor_set();
    std::fs::write(out.join("fog_descriptor.bin"), &encoded).unwrap();
    let fds = compiler.file_descriptor_set();
    prost_protovalidate_build::Builder::new()
        .file_descriptor_set_bytes(encoded)
        .out_dir(out)
        .compile()
        .expect("validation code generation succeeds");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Smaller per-stream buffers than tonic's default (see `src/codec.rs`).
        .codec_path("crate::codec::FogCodec")
        .out_dir(out)
        .compile_fds(fds)
        .expect("code generation succeeds");
}

#[test]
fn generated_code_is_up_to_date() {
    let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/gen");
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path());
    let mut drift = Vec::new();
    for name in ["fog.v1.rs", "fog_descriptor.bin", "validate_impl.rs"] {
        let fresh = std::fs::read(tmp.path().join(name)).unwrap();
        let old = std::fs::read(committed.join(name)).unwrap_or_default();
        if fresh != old {
            if std::env::var_os("FOG_PROTO_BLESS").is_some() {
                std::fs::write(committed.join(name), &fresh).unwrap();
            } else {
                drift.push(name);
            }
        }
    }
    assert!(
        drift.is_empty(),
        "generated code is stale: {drift:?}; run FOG_PROTO_BLESS=1 cargo test -p fog-proto --test bootstrap"
    );
}
