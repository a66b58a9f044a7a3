#!/usr/bin/env bash
# shellcheck shell=bash
# Shared helpers for ops/run, ops/test, ops/bench and ops/herald (sourced, not run):
# install PostgreSQL from Debian's packages, run our own cluster in a directory of ours
# (never the distribution's cluster, no pg_ctlcluster), and create the service role,
# which is never a superuser: row-level security does not apply to superusers.
#
#   herald_pg_install                      install PostgreSQL if missing; sets PG_BIN
#   herald_pg_start DIR PORT on|off        initdb DIR/data on first use, start on 127.0.0.1:PORT (fsync on|off)
#   herald_pg_bootstrap PORT ROLE PW DB    create the LOGIN role (NOSUPERUSER CREATEDB) and its database; idempotent
#   herald_pg_stop DIR                     stop the cluster if it runs; never fails
#   herald_free_port                       print a free TCP port on 127.0.0.1
#   herald_build_deps                      install what the Swift build links besides the toolchain (libssl-dev)
#
# Authentication: over the cluster's Unix socket (DIR/sock, reachable by root and postgres
# only) the superuser `postgres` is trusted; over TCP every role needs its password
# (scram-sha-256), so the local cluster is not open to every local user.

# Messages go to stderr, prefixed with the running script's name (ops/test:, ops/run:, …).
herald_log() { printf '%s: %s\n' "${HERALD_LOG_NAME:-ops/${0##*/}}" "$*" >&2; }

# herald_build_deps — the system's OpenSSL libcrypto and its headers, which the build links for DKIM signing
# (the CHeraldCrypto target).
herald_build_deps() {
    if [ ! -f /usr/include/openssl/evp.h ]; then
        herald_apt_install libssl-dev
    fi
}

# herald_apt_install PKG… — installs Debian packages (apt-get update once per script).
herald_apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        herald_log "error: $* must be installed, and only root can install packages: run 'apt-get install $*' as root, or run this as root"
        return 1
    fi
    if [ -z "${HERALD_APT_UPDATED:-}" ]; then
        herald_log "apt-get update"
        if ! apt-get update -qq; then
            herald_log "error: apt-get update failed"
            return 1
        fi
        HERALD_APT_UPDATED=1
    fi
    herald_log "installing $* from Debian's packages"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; then
        herald_log "error: apt-get install $* failed"
        return 1
    fi
}

# herald_require COMMAND [PACKAGE] — installs PACKAGE (default: COMMAND) when COMMAND is missing.
herald_require() {
    local command=$1 package=${2:-$1}
    command -v "$command" >/dev/null 2>&1 && return 0
    herald_apt_install "$package" || return 1
    if ! command -v "$command" >/dev/null 2>&1; then
        herald_log "error: $command is still missing after installing $package"
        return 1
    fi
}

# Prints the newest /usr/lib/postgresql/*/bin that has initdb, or nothing.
herald_pg_find_bin() {
    local initdb
    initdb=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1) || true
    [ -n "$initdb" ] && dirname "$initdb"
    return 0
}

# Runs a command as the postgres OS user, from / (its tools complain about an unreadable cwd).
herald_as_postgres() { (cd / && runuser -u postgres -- "$@"); }

# herald_pg_install — installs the server from Debian's packages when no initdb is present and
# exports PG_BIN, the newest server's bin directory.
herald_pg_install() {
    if [ -z "$(herald_pg_find_bin)" ]; then
        herald_log "PostgreSQL server not found under /usr/lib/postgresql"
        herald_apt_install postgresql postgresql-contrib || return 1
    fi
    PG_BIN=$(herald_pg_find_bin)
    local tool
    for tool in initdb pg_ctl postgres psql; do
        if [ ! -x "$PG_BIN/$tool" ]; then
            herald_log "error: $PG_BIN/$tool is missing (apt-get install --reinstall postgresql postgresql-client)"
            return 1
        fi
    done
    export PG_BIN
    # Debian's postgresql package creates this user; be sure even if the package came another way.
    if ! id -u postgres >/dev/null 2>&1; then
        herald_log "creating the postgres OS user"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres || return 1
    fi
    command -v runuser >/dev/null 2>&1 || herald_require runuser util-linux
}

# herald_pg_reachable PATH — every directory above PATH must be traversable (x) by postgres.
# A missing o+x (e.g. on /root, mode 700) is added, and said so; checked from / downwards.
herald_pg_reachable() {
    local path=$1 ancestors=() dir
    dir=$(dirname "$path")
    while [ "$dir" != / ]; do
        ancestors=("$dir" "${ancestors[@]}")
        dir=$(dirname "$dir")
    done
    for dir in / "${ancestors[@]}"; do
        herald_as_postgres test -x "$dir" && continue
        herald_log "the postgres user cannot enter $dir (mode $(stat -c %a "$dir")) on the way to $path: running 'chmod o+x $dir' (lets other users pass through it, not list it)"
        if ! chmod o+x "$dir" || ! herald_as_postgres test -x "$dir"; then
            herald_log "error: $dir stays closed to the postgres user: put the cluster in a directory every user can reach (e.g. under /tmp), or make each directory above it o+x"
            return 1
        fi
    done
}

# herald_pg_running DIR — whether the cluster in DIR/data runs (a postmaster.pid left by a
# crash or reboot whose PID now belongs to another program is removed).
herald_pg_running() {
    local data=$1/data pid
    [ -f "$data/postmaster.pid" ] || return 1
    herald_as_postgres "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1 || return 1
    pid=$(head -n 1 "$data/postmaster.pid")
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != postgres ]; then
        herald_log "removing the stale $data/postmaster.pid (PID $pid is not PostgreSQL)"
        rm -f "$data/postmaster.pid"
        return 1
    fi
}

# herald_pg_start DIR PORT FSYNC — creates DIR (owned by postgres, mode 700), runs initdb into
# DIR/data on first use, and starts the server on 127.0.0.1:PORT with its socket in DIR/sock.
# FSYNC is on (durable) or off (throw-away: also no synchronous commit, no full-page writes).
# A cluster already running from DIR on PORT is reused. Sets HERALD_PG_SOCKET (the socket directory).
herald_pg_start() {
    if [ $# -ne 3 ]; then
        herald_log "error: usage: herald_pg_start DIR PORT on|off"
        return 1
    fi
    local dir=$1 port=$2 fsync=$3
    case $fsync in on | off) ;; *) herald_log "error: herald_pg_start: FSYNC must be on or off, not '$fsync'"; return 1 ;; esac
    case $port in '' | *[!0-9]*) herald_log "error: herald_pg_start: PORT must be a number, not '$port'"; return 1 ;; esac
    [ -n "${PG_BIN:-}" ] || herald_pg_install || return 1

    mkdir -p "$dir" || return 1
    dir=$(readlink -f "$dir")
    case $dir in *[\'\"\\]*) herald_log "error: the cluster directory must not contain quotes or backslashes: $dir"; return 1 ;; esac
    herald_pg_reachable "$dir" || return 1
    chown postgres:postgres "$dir" && chmod 700 "$dir" || return 1
    mkdir -p "$dir/sock" && chown postgres:postgres "$dir/sock" && chmod 700 "$dir/sock" || return 1
    if [ -e "$dir/data" ] && [ "$(stat -c %U "$dir/data")" != postgres ]; then
        chown -R postgres:postgres "$dir/data" || return 1
    fi

    if [ ! -f "$dir/data/PG_VERSION" ]; then
        if [ -d "$dir/data" ] && [ -n "$(ls -A "$dir/data")" ]; then
            herald_log "error: $dir/data is not empty but holds no cluster (an interrupted initdb?): remove it and retry"
            return 1
        fi
        local locale=C
        if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then locale=C.UTF-8; fi
        herald_log "creating a PostgreSQL cluster in $dir/data (initdb, locale $locale)"
        if ! herald_as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            -E UTF8 --locale="$locale" >"$dir/initdb.log" 2>&1; then
            herald_log "error: initdb failed:"
            cat "$dir/initdb.log" >&2
            return 1
        fi
    fi

    if herald_pg_running "$dir"; then
        local running_port
        running_port=$(sed -n 4p "$dir/data/postmaster.pid")
        if [ "$running_port" = "$port" ]; then
            HERALD_PG_SOCKET=$(sed -n 5p "$dir/data/postmaster.pid")
            herald_log "reusing the PostgreSQL already running from $dir on 127.0.0.1:$port"
            return 0
        fi
        herald_log "PostgreSQL from $dir runs on port $running_port, not $port: restarting it"
        herald_pg_stop "$dir"
    fi

    # A Unix socket path has at most 107 bytes; a deep DIR gets a private directory in /tmp instead.
    local sock=$dir/sock
    if [ $((${#sock} + 11 + ${#port})) -gt 107 ]; then
        sock=$(mktemp -d /tmp/herald-pgsock.XXXXXX) && chown postgres:postgres "$sock" && chmod 700 "$sock" || return 1
        herald_log "$dir/sock is too long a path for a Unix socket; using $sock"
    fi
    local opts="-c listen_addresses=127.0.0.1 -c port=$port -k '$sock' -c unix_socket_permissions=0700"
    opts+=" -c max_connections=${HERALD_PG_MAX_CONNECTIONS:-300} -c shared_buffers=256MB -c fsync=$fsync"
    if [ "$fsync" = off ]; then
        opts+=" -c synchronous_commit=off -c full_page_writes=off"
    fi
    herald_log "starting PostgreSQL ($PG_BIN) from $dir on 127.0.0.1:$port, fsync $fsync"
    if ! herald_as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o "$opts" start >/dev/null; then
        herald_log "error: PostgreSQL did not start (port $port taken?); the end of $dir/log:"
        tail -n 30 "$dir/log" >&2
        return 1
    fi
    HERALD_PG_SOCKET=$sock
}

# herald_pg_bootstrap PORT ROLE PASSWORD DB — as the superuser (over the socket that
# herald_pg_start set up, else over TCP), creates the LOGIN role if missing, sets it to
# NOSUPERUSER CREATEDB NOCREATEROLE with PASSWORD, and creates DB owned by it if missing.
herald_pg_bootstrap() {
    if [ $# -ne 4 ]; then
        herald_log "error: usage: herald_pg_bootstrap PORT ROLE PASSWORD DB"
        return 1
    fi
    local port=$1 role=$2 password=$3 db=$4 host=127.0.0.1
    [ -n "${PG_BIN:-}" ] || herald_pg_install || return 1
    if [ -n "${HERALD_PG_SOCKET:-}" ] && [ -S "$HERALD_PG_SOCKET/.s.PGSQL.$port" ]; then
        host=$HERALD_PG_SOCKET
    fi
    if ! PGCONNECT_TIMEOUT=10 PGSSLMODE=disable PGOPTIONS='' "$PG_BIN/psql" -X -w -q -h "$host" -p "$port" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -v role="$role" -v password="$password" -v db="$db" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
    then
        herald_log "error: could not create role $role and database $db on port $port (as postgres via $host)"
        return 1
    fi
    herald_log "role $role (not a superuser, CREATEDB) and database $db ready on 127.0.0.1:$port"
}

# herald_pg_read_only PORT — makes the cluster started by herald_pg_start on PORT refuse writes
# (default_transaction_read_only, as a standby's sessions are): a server that a DATABASE_URL lists but that
# Herald must not write to (the failover tests). Run after herald_pg_bootstrap.
herald_pg_read_only() {
    local port=$1 host=127.0.0.1
    if [ -n "${HERALD_PG_SOCKET:-}" ] && [ -S "$HERALD_PG_SOCKET/.s.PGSQL.$port" ]; then host=$HERALD_PG_SOCKET; fi
    PGSSLMODE=disable "$PG_BIN/psql" -X -w -q -h "$host" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "ALTER SYSTEM SET default_transaction_read_only = on" -c "SELECT pg_reload_conf()" >/dev/null
}

# herald_pgbouncer_start DIR PGPORT PORT — pgbouncer in transaction mode on 127.0.0.1:PORT in front of the
# cluster on 127.0.0.1:PGPORT (every database; the role herald with the password herald), run as postgres,
# its files in DIR. At most HERALD_PGBOUNCER_SERVER_CONNECTIONS (20) server connections per database.
# herald_pgbouncer_stop DIR stops it.
herald_pgbouncer_start() {
    local dir=$1 pgport=$2 port=$3 _
    command -v pgbouncer >/dev/null 2>&1 || herald_apt_install pgbouncer || return 1
    mkdir -p "$dir" && chown postgres:postgres "$dir" || return 1
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$pgport
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = ${HERALD_PGBOUNCER_SERVER_CONNECTIONS:-20}
max_db_connections = ${HERALD_PGBOUNCER_SERVER_CONNECTIONS:-20}
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    printf '"herald" "herald"\n' >"$dir/userlist.txt"
    chown postgres:postgres "$dir/pgbouncer.ini" "$dir/userlist.txt"
    herald_as_postgres pgbouncer -d "$dir/pgbouncer.ini" || { herald_log "error: pgbouncer did not start"; return 1; }
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            herald_log "pgbouncer (transaction mode) on 127.0.0.1:$port in front of 127.0.0.1:$pgport"
            return 0
        fi
        sleep 0.1
    done
    herald_log "error: pgbouncer did not listen on 127.0.0.1:$port; its log:"
    tail -n 20 "$dir/pgbouncer.log" >&2
    return 1
}
herald_pgbouncer_stop() {
    local pid
    pid=$(cat "$1/pgbouncer.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
}

# herald_pg_stop DIR — stops the cluster in DIR/data if it runs (fast, else immediate). Never fails.
herald_pg_stop() {
    local dir=${1:-} bin=${PG_BIN:-} sock=""
    [ -n "$dir" ] && [ -f "$dir/data/postmaster.pid" ] || return 0
    [ -n "$bin" ] || bin=$(herald_pg_find_bin)
    [ -n "$bin" ] && [ -x "$bin/pg_ctl" ] || return 0
    sock=$(sed -n 5p "$dir/data/postmaster.pid" 2>/dev/null) || true
    if herald_as_postgres "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        if herald_as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
            || herald_as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1; then
            herald_log "stopped PostgreSQL in $dir"
        else
            herald_log "warning: could not stop PostgreSQL in $dir"
        fi
    fi
    case $sock in /tmp/herald-pgsock.*) rm -rf "$sock" 2>/dev/null || true ;; esac
    return 0
}

# herald_free_port — prints a TCP port that is free on 127.0.0.1 right now.
herald_free_port() {
    herald_require python3 || return 1
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
