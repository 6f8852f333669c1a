#!/usr/bin/env bash
# Runs Cairn's whole test suite on a fresh machine: installs what the tests
# need that cargo does not (pyarrow, the independent Parquet reader used by
# the end-to-end tests), then runs every test of every crate.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import pyarrow" 2>/dev/null; then
    echo "tests/run.sh: installing pyarrow (independent Parquet reader for the e2e tests)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore pyarrow
fi

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
