//! Generates the raw baseline service from `proto/raw.proto` with protox (no protoc).

fn main() {
    println!("cargo:rerun-if-changed=proto/raw.proto");
    let fds = protox::compile(["raw.proto"], ["proto"]).expect("raw.proto compiles");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)
        .expect("code generation succeeds");
}
