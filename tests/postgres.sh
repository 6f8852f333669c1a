# Sourced by tests/run.sh: starts a throwaway PostgreSQL server on a free
# loopback port for the catalog tests (Debian's `postgresql`, installed if
# missing), exports its URL as CAIRN_TEST_POSTGRES_URL, and stops it and
# removes its files when the calling shell exits.
#
# The server checks passwords (scram-sha-256), so that the tests of wrong
# credentials are real; the superuser is `cairn`, password `cairn-test`.
# fsync is off: nothing in it outlives the run.

cairn_pg_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$dir/initdb" ] && { echo "$dir"; return; }
    done
}

if [ -z "$(cairn_pg_bin)" ]; then
    echo "tests/postgres.sh: installing postgresql (server for the PostgreSQL catalog tests)"
    sudo_=""
    [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get install -y -q postgresql >/dev/null ||
        { $sudo_ apt-get update -q && $sudo_ apt-get install -y -q postgresql >/dev/null; }
fi
CAIRN_PG_BIN=$(cairn_pg_bin)
CAIRN_PG_DIR=$(mktemp -d /tmp/cairn-postgres.XXXXXX)
CAIRN_PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cairn_as_pg=()
if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root.
    chown postgres "$CAIRN_PG_DIR"
    cairn_as_pg=(runuser -u postgres --)
fi
echo cairn-test >"$CAIRN_PG_DIR/password"
chmod 644 "$CAIRN_PG_DIR/password"
"${cairn_as_pg[@]}" "$CAIRN_PG_BIN/initdb" -D "$CAIRN_PG_DIR/data" -U cairn \
    --pwfile="$CAIRN_PG_DIR/password" --auth=scram-sha-256 -E UTF8 >"$CAIRN_PG_DIR/initdb.log" 2>&1 ||
    { cat "$CAIRN_PG_DIR/initdb.log"; exit 1; }
"${cairn_as_pg[@]}" "$CAIRN_PG_BIN/pg_ctl" -D "$CAIRN_PG_DIR/data" -l "$CAIRN_PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $CAIRN_PG_PORT -k $CAIRN_PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null ||
    { cat "$CAIRN_PG_DIR/server.log"; exit 1; }

cairn_stop_postgres() {
    "${cairn_as_pg[@]}" "$CAIRN_PG_BIN/pg_ctl" -D "$CAIRN_PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$CAIRN_PG_DIR"
}
trap cairn_stop_postgres EXIT

export CAIRN_TEST_POSTGRES_URL="postgres://cairn:cairn-test@127.0.0.1:$CAIRN_PG_PORT/postgres"
echo "tests/postgres.sh: PostgreSQL $("$CAIRN_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$CAIRN_PG_PORT"
