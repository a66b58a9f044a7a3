#!/usr/bin/env bash
# Shared PostgreSQL helpers for ops/run, ops/test and ops/bench: install from Debian's packages,
# run our own cluster (never the distribution's), create the non-superuser service role.

herald_log() { echo "ops: $*" >&2; }

# Installs PostgreSQL when no initdb is present, and sets PG_BIN to the newest server's bin directory.
herald_pg_install() {
    if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        herald_log "installing PostgreSQL from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql postgresql-contrib >/dev/null
    fi
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    export PG_BIN
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
}

# herald_pg_start DIR PORT FSYNC — initialises DIR/data on first use and starts the server on 127.0.0.1:PORT.
herald_pg_start() {
    local dir=$1 port=$2 fsync=$3
    mkdir -p "$dir/sock"
    chown -R postgres:postgres "$dir"
    chmod 700 "$dir"
    # Every parent must be traversable by the postgres user.
    local parent
    parent=$(dirname "$(readlink -f "$dir")")
    while [ "$parent" != "/" ]; do
        if ! runuser -u postgres -- test -x "$parent"; then
            chmod o+x "$parent" || { herald_log "postgres cannot enter $parent; choose another directory"; return 1; }
        fi
        parent=$(dirname "$parent")
    done
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        local locale=C.UTF-8
        locale -a 2>/dev/null | grep -qi '^c\.utf-\?8$' || locale=C
        runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale="$locale" >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; return 1; }
    fi
    if runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        return 0
    fi
    local opts="-c listen_addresses=127.0.0.1 -c port=$port -k $dir/sock -c max_connections=300 -c shared_buffers=256MB"
    if [ "$fsync" = off ]; then
        opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o "$opts" start >/dev/null \
        || { tail -n 30 "$dir/log" >&2; return 1; }
}

# herald_pg_bootstrap PORT ROLE PASSWORD DB — the service role must not be a superuser: RLS does not apply to superusers.
herald_pg_bootstrap() {
    local port=$1 role=$2 password=$3 db=$4
    local psql=("$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -qAt)
    if [ "$("${psql[@]}" -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '$role'")" != 1 ]; then
        "${psql[@]}" -d postgres -c "CREATE ROLE $role LOGIN NOSUPERUSER CREATEDB NOCREATEROLE PASSWORD '$password'"
    else
        "${psql[@]}" -d postgres -c "ALTER ROLE $role LOGIN NOSUPERUSER CREATEDB PASSWORD '$password'"
    fi
    if [ "$("${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
        "${psql[@]}" -d postgres -c "CREATE DATABASE $db OWNER $role"
    fi
}

# herald_pg_stop DIR — never fails the caller.
herald_pg_stop() {
    local dir=$1
    [ -n "${PG_BIN:-}" ] && [ -d "$dir/data" ] || return 0
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# Prints a free TCP port on 127.0.0.1.
herald_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
