#!/usr/bin/env bash
# Loads (creating on first use) the local settings kept under .data/: PostgreSQL cluster, master key, admin token.
. "$(dirname "${BASH_SOURCE[0]}")/postgres.sh"

herald_env_load() {
    mkdir -p .data
    chmod 755 .data
    if [ -z "${DATABASE_URL:-}" ]; then
        herald_pg_install
        local port=${HERALD_PG_PORT:-5433}
        if [ ! -f .data/pg-password ]; then
            (umask 077; python3 -c 'import secrets; print(secrets.token_hex(16))' > .data/pg-password)
        fi
        herald_pg_start "$PWD/.data/pg" "$port" on
        herald_pg_bootstrap "$port" herald "$(cat .data/pg-password)" herald
        export DATABASE_URL="postgres://herald:$(cat .data/pg-password)@127.0.0.1:$port/herald"
    fi
    if [ -z "${HERALD_MASTER_KEY:-}" ]; then
        [ -f .data/master.key ] || (umask 077; python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())' > .data/master.key)
        HERALD_MASTER_KEY=$(cat .data/master.key)
        export HERALD_MASTER_KEY
    fi
    if [ -z "${HERALD_ADMIN_TOKEN:-}" ]; then
        [ -f .data/admin.token ] || (umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' > .data/admin.token)
        HERALD_ADMIN_TOKEN=$(cat .data/admin.token)
        export HERALD_ADMIN_TOKEN
    fi
    export HERALD_MIGRATIONS_DIR=${HERALD_MIGRATIONS_DIR:-$PWD/Migrations}
}
