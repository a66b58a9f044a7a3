#!/usr/bin/env bash
# shellcheck shell=bash
# Loads (creating on first use) the local settings that ops/run and ops/herald keep under .data/
# (sourced, not run; the caller's working directory is the repository root):
#   DATABASE_URL        unless set: our own cluster in .data/pg on 127.0.0.1:${HERALD_PG_PORT:-5433},
#                       role herald with the password in .data/pg-password, database herald
#   HERALD_MASTER_KEY   unless set: .data/master.key (32 random bytes, base64)
#   HERALD_ADMIN_TOKEN  unless set: .data/admin.token (32 random bytes, hex)
# shellcheck source=ops/lib/postgres.sh
. "$(dirname "${BASH_SOURCE[0]}")/postgres.sh"

# herald_secret_file FILE PYTHON-EXPRESSION — prints FILE, first writing it (mode 600) from the
# expression when it does not exist. An existing empty file is an error, never silently replaced.
herald_secret_file() {
    local file=$1 expression=$2 value
    if [ ! -e "$file" ]; then
        herald_require python3 || return 1
        (umask 077 && python3 -c "import base64, os, secrets; print($expression)" >"$file") || return 1
        herald_log "generated $file (keep it; it is reused by every run)"
    fi
    value=$(cat "$file")
    if [ -z "$value" ]; then
        herald_log "error: $file is empty: restore it, or remove it to generate a new one"
        return 1
    fi
    printf '%s\n' "$value"
}

herald_env_load() {
    mkdir -p .data
    chmod 755 .data # the postgres user must pass through it to .data/pg; the secrets are mode 600
    if [ -z "${DATABASE_URL:-}" ]; then
        local port=${HERALD_PG_PORT:-5433} password
        password=$(herald_secret_file .data/pg-password 'secrets.token_hex(16)') || return 1
        herald_pg_install || return 1
        herald_pg_start "$PWD/.data/pg" "$port" on || return 1
        herald_pg_bootstrap "$port" herald "$password" herald || return 1
        DATABASE_URL="postgres://herald:$password@127.0.0.1:$port/herald"
        export DATABASE_URL
    else
        herald_log "using DATABASE_URL from the environment (no local PostgreSQL)"
    fi
    if [ -z "${HERALD_MASTER_KEY:-}" ]; then
        HERALD_MASTER_KEY=$(herald_secret_file .data/master.key 'base64.b64encode(os.urandom(32)).decode()') || return 1
        export HERALD_MASTER_KEY
    fi
    if [ -z "${HERALD_ADMIN_TOKEN:-}" ]; then
        HERALD_ADMIN_TOKEN=$(herald_secret_file .data/admin.token 'secrets.token_hex(32)') || return 1
        export HERALD_ADMIN_TOKEN
    fi
    export HERALD_MIGRATIONS_DIR=${HERALD_MIGRATIONS_DIR:-$PWD/Migrations}
}
