#!/usr/bin/env bash
# Runs Cairn's whole test suite on a fresh machine: installs what the tests
# need that cargo does not (pyarrow, the independent Parquet reader used by
# the end-to-end tests), then runs every test of every crate.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import pyarrow, numpy" 2>/dev/null; then
    echo "tests/run.sh: installing pyarrow and numpy (independent Parquet reader for the e2e tests; the peers' DAG generator)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore pyarrow numpy
fi

# tests/openlineage/validate.py (run by the engine's openlineage tests)
# checks events with jsonschema and the official Python client's models.
if ! python3 -c "import importlib.metadata as m, jsonschema, referencing, rfc3339_validator, rfc3986_validator; assert m.version('openlineage-python') == '1.54.0'" 2>/dev/null; then
    echo "tests/run.sh: installing jsonschema and openlineage-python (OpenLineage event validation)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        jsonschema rfc3339-validator rfc3986-validator openlineage-python==1.54.0
fi

# tests/grpc/client.py: a real gRPC client for `cairn serve` (stubs
# generated from proto/cairn/v1/cairn.proto at test time).
if ! python3 -c "import grpc, grpc_tools, grpc_health, grpc_reflection" 2>/dev/null; then
    echo "tests/run.sh: installing grpcio, grpcio-tools, grpcio-health-checking, grpcio-reflection (gRPC client for the serve tests)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        grpcio grpcio-tools grpcio-health-checking grpcio-reflection
fi

# tests/grpc/flight_client.py: a real Arrow Flight SQL client (ADBC's
# Flight SQL driver) for `cairn serve`.
if ! python3 -c "import adbc_driver_flightsql.dbapi, adbc_driver_manager, pyarrow" 2>/dev/null; then
    echo "tests/run.sh: installing adbc-driver-flightsql, adbc-driver-manager (Flight SQL client for the serve tests)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        adbc-driver-flightsql adbc-driver-manager
fi

# tests/e2e/s3.rs: a real S3-protocol server on loopback (moto's server
# mode: path-style, multipart uploads).
if ! python3 -c "import moto.server" 2>/dev/null; then
    echo "tests/run.sh: installing moto[server] (S3-protocol server for the storage tests)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        'moto[server]'
fi

# tests/e2e/azure.rs creates its container with Azure's own Python client.
if ! python3 -c "import azure.storage.blob" 2>/dev/null; then
    echo "tests/run.sh: installing azure-storage-blob (creates the Azurite container of the az:// tests)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        azure-storage-blob
fi

# No Python package ships the OpenLineage JSON Schemas; the crates.io
# package datafusion-openlineage carries a verbatim copy of them
# (tests/schemas/openlineage), so cargo fetches it into its registry cache,
# where validate.py finds it.
if ! python3 tests/openlineage/validate.py --print-spec-dir >/dev/null 2>&1; then
    echo "tests/run.sh: fetching the OpenLineage JSON Schemas (crate datafusion-openlineage)"
    spec_fetch=$(mktemp -d)
    printf '%s\n' '[package]' 'name = "openlineage-spec-fetch"' 'version = "0.0.0"' \
        'edition = "2021"' 'publish = false' '[lib]' 'path = "lib.rs"' \
        '[dependencies]' 'datafusion-openlineage = "=0.0.7"' >"$spec_fetch/Cargo.toml"
    touch "$spec_fetch/lib.rs"
    cargo fetch --quiet --manifest-path "$spec_fetch/Cargo.toml" \
        --target "$(rustc -vV | sed -n 's/^host: //p')"
    rm -rf "$spec_fetch"
    python3 tests/openlineage/validate.py --print-spec-dir >/dev/null
fi

# The https alert test makes its certificate with openssl.
if ! command -v openssl >/dev/null; then
    echo "tests/run.sh: installing openssl (certificates for the https alert test)"
    sudo_=""
    [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get install -y -q openssl >/dev/null
fi

# The web page's tests drive Debian's Chromium headless through npm
# playwright-core (tests/web/drive.mjs): no browser is downloaded.
if [ ! -x /usr/bin/chromium ]; then
    echo "tests/run.sh: installing chromium (headless browser for the web page tests)"
    sudo_=""
    [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get install -y -q chromium >/dev/null ||
        { $sudo_ apt-get update -q && $sudo_ apt-get install -y -q chromium >/dev/null; }
fi

# lineage-ui's build tools (the bundle freshness test rebuilds it) and
# playwright-core, exactly as package-lock.json pins them.
if ! npm ls --prefix lineage-ui --all >/dev/null 2>&1; then
    echo "tests/run.sh: installing lineage-ui's npm packages (npm ci)"
    npm ci --prefix lineage-ui --no-audit --no-fund --loglevel=error
fi

# Azurite (npm), the Azure Storage emulator the az:// tests start on
# loopback, exactly as tests/servers/package-lock.json pins it.
if ! npm ls --prefix tests/servers --all >/dev/null 2>&1; then
    echo "tests/run.sh: installing the test servers' npm packages (Azurite; npm ci)"
    npm ci --prefix tests/servers --no-audit --no-fund --loglevel=error
fi

# A throwaway PostgreSQL server on loopback for the PostgreSQL catalog
# tests (stopped when this script exits).
source tests/postgres.sh

# The page's own unit tests (layout, search, routes, SQL tokenizer).
npm test --prefix lineage-ui --silent

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi

# The benchmarks hold the speed targets: keep them running (tiny sizes,
# debug build; their own checks verify what they measure).
cargo bench --quiet --workspace --profile dev --bench partitions -- \
    --assets 3 --plan-assets 2 >/dev/null
cargo bench --quiet --workspace --profile dev --bench orchestration -- \
    5 --rows 2000 >/dev/null
cargo bench --quiet --workspace --profile dev --bench serve -- \
    --assets 20 --runs 10 --status-calls 5 >/dev/null
cargo bench --quiet --workspace --profile dev --bench web -- \
    --assets 50 --runs 1 >/dev/null
peers_dir=$(mktemp -d)
cargo bench --quiet --workspace --profile dev --bench peers -- \
    10 --rows 20000 --keep "$peers_dir" >/dev/null
cargo bench --quiet --workspace --profile dev --bench parquet_writer -- \
    "$peers_dir/n10/cairn/warehouse" --repeats 1 >/dev/null
rm -rf "$peers_dir"
cargo bench --quiet --workspace --profile dev --bench large_project -- \
    300 --repeats 1 >/dev/null
