# Source this file: it starts a throwaway PostgreSQL cluster on loopback and exports LOOKALIKE_TEST_DB.
# The cluster lives in a temp dir and is stopped and deleted when the sourcing shell exits.
# Debian's postgresql package is installed first if no server binaries are there.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PGPORT=${LOOKALIKE_PG_PORT:-55432}
PGDATA=$(mktemp -d /tmp/lookalike-pg.XXXXXX)
if [ "$(id -u)" = 0 ]; then
    chown postgres "$PGDATA"
    as_pg() { runuser -u postgres -- "$@"; }   # the server refuses to run as root
else
    as_pg() { "$@"; }
fi
as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w -l "$PGDATA/server.log" \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDATA -c fsync=off -c max_connections=300" start >/dev/null
trap 'as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$PGDATA"' EXIT
export LOOKALIKE_TEST_DB="postgresql+psycopg://postgres@127.0.0.1:$PGPORT/postgres"
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT (throwaway cluster in $PGDATA)"
