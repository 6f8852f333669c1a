//! The generated Rust under `src/gen/` is committed (users need no
//! `protoc`); this test regenerates it from `cairn/v1/*.proto` with a
//! vendored `protoc` and fails when the committed copy is stale.
//! `UPDATE_PROTO=1 cargo test -p cairn-proto --test generated` rewrites it.

use std::path::{Path, PathBuf};

/// This crate's folder: cargo's runtime `CARGO_MANIFEST_DIR` first. The
/// compiled-in one names the checkout the test was built in, and a build
/// shared between checkouts (one `CARGO_TARGET_DIR`) may run it from
/// another.
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf(),
        PathBuf::from,
    )
}

/// Generated files (name -> bytes) from the protos, into a temp dir.
fn generate() -> Vec<(String, Vec<u8>)> {
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let protoc = protoc_bin_vendored::protoc_bin_path().unwrap_or_else(|e| panic!("{e}"));
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    let proto = root().join("cairn/v1/cairn.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        // The same messages as JSON for the web page's HTTP API (`cairn
        // serve`'s `/api/v1/<Method>`): every field present, any omitted
        // from a request taking its default, a misspelt one refused (not
        // silently ignored: `{"selections": ...}` must not mean "all").
        .type_attribute(
            ".cairn.v1",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default, deny_unknown_fields)]",
        )
        .out_dir(out.path())
        .file_descriptor_set_path(out.path().join("cairn_v1_descriptor.bin"))
        .compile_with_config(config, &[proto], &[root()])
        .unwrap_or_else(|e| panic!("generating from cairn.proto: {e}"));
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|e| {
            let p = e.unwrap_or_else(|e| panic!("{e}")).path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, std::fs::read(&p).unwrap_or_else(|e| panic!("{e}")))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn committed_generated_code_is_fresh() {
    let gen_dir = root().join("src/gen");
    let fresh = generate();
    assert!(
        fresh.iter().any(|(n, _)| n == "cairn.v1.rs"),
        "{:?}",
        fresh.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    if std::env::var_os("UPDATE_PROTO").is_some() {
        std::fs::create_dir_all(&gen_dir).unwrap_or_else(|e| panic!("{e}"));
        for (name, bytes) in &fresh {
            std::fs::write(gen_dir.join(name), bytes).unwrap_or_else(|e| panic!("{e}"));
        }
        return;
    }
    for (name, bytes) in &fresh {
        let committed = std::fs::read(gen_dir.join(name)).unwrap_or_default();
        assert!(
            committed == *bytes,
            "proto/src/gen/{name} is stale: run `UPDATE_PROTO=1 cargo test -p cairn-proto --test generated` and commit it"
        );
    }
}
