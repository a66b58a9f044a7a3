#!/usr/bin/env bash
# shellcheck shell=bash
# A throw-away PostgreSQL high-availability formation for ops/failover-test (sourced, not run):
# Debian's pg_auto_failover (pg_autoctl) with a monitor and two data nodes, node1 and node2, each
# on a free port of 127.0.0.1, everything in a directory of ours (data, pg_autoctl's config, state
# and pid files, logs), run as the postgres OS user (PostgreSQL refuses root). Call these as root.
#
#   herald_failover_install                  install PostgreSQL and pg_auto_failover if missing; sets HERALD_PG_AUTOCTL
#   herald_failover_create DIR               monitor + node1 + node2 under DIR, waits for primary/secondary,
#                                            creates role herald (password herald) and database herald on the primary
#   herald_failover_url DIR                  postgres://herald:herald@127.0.0.1:P1,127.0.0.1:P2/herald?target_session_attrs=read-write
#   herald_failover_primary DIR              prints "NAME PORT" of the node the monitor holds for primary
#   herald_failover_kill_primary DIR         SIGKILLs the primary's pg_autoctl and PostgreSQL (a lost machine); prints its name
#   herald_failover_wait_primary DIR SECS    waits until the other node takes writes; prints the seconds waited (e.g. 7.4)
#   herald_failover_destroy DIR              stops everything of the formation and removes DIR; never fails
#   herald_failover_state DIR                prints "NAME PORT REPORTED_STATE ASSIGNED_STATE" per data node, from the monitor
#
# Call herald_failover_destroy from an EXIT trap: a half-made formation is destroyed the same way.
#
# Layout of DIR (mode 700, owned by postgres): monitor/ node1/ node2/ (PGDATA), NAME.port, NAME.pid
# (the `pg_autoctl run` of each), NAME.log, xdg/ (pg_autoctl's XDG_CONFIG_HOME, XDG_DATA_HOME and
# XDG_RUNTIME_DIR, so nothing lands in ~postgres), backup/ (pg_basebackup's staging), killed (the
# node herald_failover_kill_primary killed) and killed-at (when, in nanoseconds since the epoch).
# The Unix sockets stay in Debian's /var/run/postgresql (pg_autoctl leaves unix_socket_directories
# alone); herald_failover_destroy removes those that a killed server left there.
#
# Authentication: --auth trust on 127.0.0.1 (pg_autoctl runs initdb with --auth=trust), so the
# password of herald is set but not asked for; nothing listens beyond 127.0.0.1 (--listen 127.0.0.1
# on every node, the monitor included, whose default would be '*'). No TLS (--no-ssl): loopback only.
#
# Failover timers, set on the monitor (ALTER SYSTEM, pg_auto_failover 2.0's defaults in brackets):
#   pgautofailover.health_check_period               1000 ms  [5000]
#   pgautofailover.health_check_timeout              1000 ms  [5000]   connect timeout of a health check
#   pgautofailover.health_check_max_retries          1        [2]
#   pgautofailover.health_check_retry_delay           500 ms  [2000]
#   pgautofailover.node_considered_unhealthy_timeout 3000 ms  [20000]  no report from a keeper for this long
#   pgautofailover.primary_demote_timeout            3000 ms  [30000]  the old primary's time to stop itself
#   pgautofailover.startup_grace_period              2000 ms  [10000]  no failover this soon after the monitor starts
# A killed primary is replaced in about 7 s on loopback (unhealthy timeout + demote timeout + a few
# 1 s keeper rounds). The keepers keep their timeout.network_partition_timeout (20 s): a primary cut
# off from the monitor and the standby but not from its clients stops itself only then, so with these
# timers two nodes could take writes for a while; that cannot happen on loopback, but a real
# deployment keeps primary_demote_timeout above network_partition_timeout. `pg_autoctl set formation`
# has only number-sync-standbys (left at 0: with one standby the primary commits synchronously,
# 'ANY 1 (pgautofailover_standby_N)', so a committed row survives the kill).

# shellcheck source=ops/lib/postgres.sh
. "$(dirname "${BASH_SOURCE[0]}")/postgres.sh"

HERALD_FAILOVER_NODES="node1 node2"
# Debian's default Unix socket directory, where pg_autoctl's clusters put their sockets.
HERALD_FAILOVER_SOCKDIR=/var/run/postgresql

# herald_failover_install — PostgreSQL (herald_pg_install: PG_BIN) and pg_auto_failover for that
# server's major version (postgresql-MAJOR-auto-failover, which brings pg-auto-failover-cli with
# pg_autoctl). Exports HERALD_PG_AUTOCTL (pg_autoctl's path) and puts PG_BIN and pg_autoctl's
# directory on PATH.
herald_failover_install() {
    herald_pg_install || return 1
    herald_require python3 || return 1
    local major lib autoctl
    major=$(basename "$(dirname "$PG_BIN")")
    lib=$(dirname "$PG_BIN")/lib/pgautofailover.so
    autoctl=$(herald_failover_find_autoctl)
    if [ -z "$autoctl" ] || [ ! -f "$lib" ]; then
        herald_apt_install "postgresql-$major-auto-failover" || return 1
        autoctl=$(herald_failover_find_autoctl)
    fi
    if [ -z "$autoctl" ] || [ ! -f "$lib" ]; then
        herald_log "error: pg_autoctl or $lib is still missing after installing postgresql-$major-auto-failover"
        return 1
    fi
    HERALD_PG_AUTOCTL=$autoctl
    export HERALD_PG_AUTOCTL
    case ":$PATH:" in *":$PG_BIN:"*) ;; *) PATH=$PG_BIN:$PATH ;; esac
    case ":$PATH:" in *":$(dirname "$autoctl"):"*) ;; *) PATH=$(dirname "$autoctl"):$PATH ;; esac
    export PATH
    # Debian's packages create the socket directory (tmpfiles.d); be sure it is there after a reboot too.
    if [ ! -d "$HERALD_FAILOVER_SOCKDIR" ]; then
        mkdir -p "$HERALD_FAILOVER_SOCKDIR" && chown postgres:postgres "$HERALD_FAILOVER_SOCKDIR" \
            && chmod 2775 "$HERALD_FAILOVER_SOCKDIR" || return 1
    fi
}

# Prints pg_autoctl's path (Debian: /usr/bin/pg_autoctl, from pg-auto-failover-cli), or nothing.
herald_failover_find_autoctl() {
    local found
    found=$(command -v pg_autoctl 2>/dev/null) || found=""
    if [ -z "$found" ]; then
        found=$(compgen -G '/usr/lib/postgresql/*/bin/pg_autoctl' | sort -V | tail -n 1) || true
    fi
    [ -n "$found" ] && [ -x "$found" ] && printf '%s\n' "$found"
    return 0
}

# herald_failover_autoctl DIR ARG… — runs pg_autoctl ARG… as postgres with DIR's XDG directories.
herald_failover_autoctl() {
    local dir=$1
    shift
    herald_as_postgres env XDG_CONFIG_HOME="$dir/xdg/config" XDG_DATA_HOME="$dir/xdg/share" \
        XDG_RUNTIME_DIR="$dir/xdg/run" PATH="$PG_BIN:/usr/bin:/bin" "$HERALD_PG_AUTOCTL" "$@"
}

# herald_failover_psql PORT DB ARG… — psql as the superuser postgres over 127.0.0.1 (trusted).
herald_failover_psql() {
    local port=$1 db=$2
    shift 2
    PGCONNECT_TIMEOUT=${HERALD_FAILOVER_CONNECT_TIMEOUT:-3} PGSSLMODE=disable PGOPTIONS='' PGTARGETSESSIONATTRS=any \
        "$PG_BIN/psql" -X -w -q -h 127.0.0.1 -p "$port" -U postgres -d "$db" -v ON_ERROR_STOP=1 "$@"
}

# herald_failover_dir DIR — prints DIR's absolute path once it holds a formation of ours.
herald_failover_dir() {
    local dir
    dir=$(readlink -f "${1:-}" 2>/dev/null) || dir=""
    if [ -z "$dir" ] || [ ! -f "$dir/.herald-failover" ]; then
        herald_log "error: ${1:-(no directory given)} holds no formation made by herald_failover_create"
        return 1
    fi
    printf '%s\n' "$dir"
}

# herald_failover_port DIR NAME — prints the port of NAME (monitor, node1, node2).
herald_failover_port() {
    local port
    port=$(cat "$1/$2.port" 2>/dev/null) || port=""
    case $port in '' | *[!0-9]*) herald_log "error: no port recorded for $2 in $1"; return 1 ;; esac
    printf '%s\n' "$port"
}

# herald_failover_ready — the pg_autoctl and PostgreSQL this library needs (installs them once).
herald_failover_ready() {
    if [ "$(id -u)" -ne 0 ]; then
        herald_log "error: run this as root: it runs pg_autoctl and PostgreSQL as the postgres user (runuser)"
        return 1
    fi
    if [ -z "${HERALD_PG_AUTOCTL:-}" ] || [ -z "${PG_BIN:-}" ]; then
        herald_failover_install || return 1
    fi
}

# herald_failover_tree PID… — prints each PID that is alive and all its descendants (zombies left out:
# they are dead already, and only their parent can reap them).
herald_failover_tree() {
    ps -eo pid=,ppid=,stat= | awk -v roots="$*" '
        $3 !~ /^Z/ { parent[$1] = $2; alive[$1] = 1 }
        END {
            n = split(roots, r, " ")
            for (i = 1; i <= n; i++) if (r[i] in alive) keep[r[i]] = 1
            do {
                grew = 0
                for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 }
            } while (grew)
            for (p in keep) print p
        }'
}

# herald_failover_pid DIR NAME — prints the PID of NAME's `pg_autoctl run` while it runs (a PID
# in DIR/NAME.pid that now belongs to another program is not printed).
herald_failover_pid() {
    local pid
    pid=$(cat "$1/$2.pid" 2>/dev/null) || return 1
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = pg_autoctl ] || return 1
    herald_failover_living "$pid" || return 1
    printf '%s\n' "$pid"
}

# herald_failover_living PID — whether PID runs (exists and is no zombie).
herald_failover_living() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# herald_failover_procs DIR NAME — prints the PIDs of NAME's `pg_autoctl run` and its children, and of
# every process whose working directory is NAME's PGDATA (PostgreSQL's postmaster and backends,
# even those that lost their parent).
herald_failover_procs() {
    local dir=$1 name=$2 roots="" pid proc
    pid=$(herald_failover_pid "$dir" "$name") && roots=$pid
    pid=$(head -n 1 "$dir/$name/postmaster.pid" 2>/dev/null) || pid=""
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
        roots+=" $pid"
    fi
    {
        # shellcheck disable=SC2086  # a list of PIDs
        [ -z "${roots// /}" ] || herald_failover_tree $roots
        for proc in /proc/[0-9]*; do
            if [ "$(readlink "$proc/cwd" 2>/dev/null)" = "$dir/$name" ] && herald_failover_living "${proc#/proc/}"; then
                printf '%s\n' "${proc#/proc/}"
            fi
        done
    } | sort -un
    return 0
}

# herald_failover_kill DIR NAME [FILE] — SIGKILLs NAME's processes (all at once, again until none is
# left); FILE gets the time of the first SIGKILL (nanoseconds since the epoch).
herald_failover_kill() {
    local dir=$1 name=$2 at=${3:-} pids _
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(herald_failover_procs "$dir" "$name")
        [ -n "$pids" ] || return 0
        if [ -n "$at" ]; then
            date +%s%N >"$at"
            at=""
        fi
        # shellcheck disable=SC2086  # a list of PIDs
        kill -KILL $pids 2>/dev/null || true
        sleep 0.2
    done
    pids=$(herald_failover_procs "$dir" "$name")
    [ -z "$pids" ] || herald_log "warning: processes of $name are still there after SIGKILL: ${pids//$'\n'/ }"
}

# herald_failover_start DIR NAME — starts `pg_autoctl run` for NAME in the background, detached
# from the caller (its own session, not a job of the calling shell), as postgres; log DIR/NAME.log,
# PID in DIR/NAME.pid (the pg_autoctl process itself, written by it before exec).
herald_failover_start() {
    local dir=$1 name=$2 _
    rm -f "$dir/$name.pid"
    (
        # shellcheck disable=SC2016  # the inner shell expands $$, $1 and $@
        cd / && setsid runuser -u postgres -- sh -c 'echo $$ >"$1" && shift && exec "$@"' sh "$dir/$name.pid" \
            env XDG_CONFIG_HOME="$dir/xdg/config" XDG_DATA_HOME="$dir/xdg/share" XDG_RUNTIME_DIR="$dir/xdg/run" \
            PATH="$PG_BIN:/usr/bin:/bin" "$HERALD_PG_AUTOCTL" run --pgdata "$dir/$name" \
            </dev/null >>"$dir/$name.log" 2>&1 &
    )
    for _ in $(seq 50); do
        [ -s "$dir/$name.pid" ] && return 0
        sleep 0.1
    done
    herald_log "error: pg_autoctl run for $name did not start; the end of $dir/$name.log:"
    tail -n 20 "$dir/$name.log" >&2
    return 1
}

# herald_failover_alive DIR NAME — whether NAME's `pg_autoctl run` is running.
herald_failover_alive() { herald_failover_pid "$1" "$2" >/dev/null; }

# herald_failover_state DIR — one line per data node: NAME PORT REPORTED_STATE ASSIGNED_STATE,
# as the monitor has them (pg_autoctl show state --json).
herald_failover_state() {
    local dir json
    dir=$(herald_failover_dir "${1:-}") || return 1
    herald_failover_ready || return 1
    json=$(herald_failover_autoctl "$dir" show state --pgdata "$dir/monitor" --json 2>/dev/null) || return 1
    printf '%s' "$json" | python3 -c '
import json, sys
for node in json.load(sys.stdin):
    print(node["nodename"], node["nodeport"], node["current_group_state"], node["assigned_group_state"])
'
}

# herald_failover_create DIR — makes the formation (see the top of this file). DIR must not hold
# one yet; it is created (mode 700, owned by postgres). Gives up after HERALD_FAILOVER_TIMEOUT
# seconds (default 120) of waiting for any one step.
herald_failover_create() {
    if [ $# -ne 1 ]; then
        herald_log "error: usage: herald_failover_create DIR"
        return 1
    fi
    herald_failover_ready || return 1
    local dir=$1 timeout=${HERALD_FAILOVER_TIMEOUT:-120} started=$SECONDS
    mkdir -p "$dir" || return 1
    dir=$(readlink -f "$dir")
    case $dir in
        *[!A-Za-z0-9._/+-]*) herald_log "error: the formation's directory may hold only letters, digits and ._/+-: $dir"; return 1 ;;
    esac
    if [ -n "$(ls -A "$dir")" ]; then
        herald_log "error: $dir is not empty (a formation is there already? herald_failover_destroy it first)"
        return 1
    fi
    herald_pg_reachable "$dir" || return 1
    touch "$dir/.herald-failover" || return 1
    mkdir -p "$dir/xdg/config" "$dir/xdg/share" "$dir/xdg/run" || return 1
    chown -R postgres:postgres "$dir" && chmod 700 "$dir" "$dir/xdg/run" || return 1

    # Three distinct free ports.
    local name port taken=" "
    for name in monitor $HERALD_FAILOVER_NODES; do
        port=$(herald_free_port) || return 1
        while [[ $taken == *" $port "* ]]; do port=$(herald_free_port) || return 1; done
        taken+="$port "
        printf '%s\n' "$port" >"$dir/$name.port"
    done
    local monitor_port
    monitor_port=$(herald_failover_port "$dir" monitor) || return 1

    herald_log "creating a pg_auto_failover monitor in $dir/monitor on 127.0.0.1:$monitor_port"
    if ! herald_failover_autoctl "$dir" create monitor --pgdata "$dir/monitor" --pgport "$monitor_port" \
        --pgctl "$PG_BIN/pg_ctl" --hostname 127.0.0.1 --listen 127.0.0.1 --auth trust --no-ssl \
        >>"$dir/monitor.log" 2>&1; then
        herald_log "error: pg_autoctl create monitor failed; the end of $dir/monitor.log:"
        tail -n 20 "$dir/monitor.log" >&2
        return 1
    fi
    herald_failover_start "$dir" monitor || return 1
    until herald_failover_psql "$monitor_port" pg_auto_failover -c 'SELECT 1' >/dev/null 2>&1; do
        if ! herald_failover_alive "$dir" monitor || [ $((SECONDS - started)) -ge "$timeout" ]; then
            herald_log "error: the monitor does not answer on 127.0.0.1:$monitor_port; the end of $dir/monitor.log:"
            tail -n 20 "$dir/monitor.log" >&2
            return 1
        fi
        sleep 0.3
    done
    if ! herald_failover_psql "$monitor_port" pg_auto_failover >/dev/null <<'SQL'
ALTER SYSTEM SET pgautofailover.health_check_period = 1000;
ALTER SYSTEM SET pgautofailover.health_check_timeout = 1000;
ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1;
ALTER SYSTEM SET pgautofailover.health_check_retry_delay = 500;
ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = 3000;
ALTER SYSTEM SET pgautofailover.primary_demote_timeout = 3000;
ALTER SYSTEM SET pgautofailover.startup_grace_period = 2000;
SELECT pg_reload_conf();
SQL
    then
        herald_log "error: could not set the failover timers on the monitor"
        return 1
    fi

    local monitor_uri="postgres://autoctl_node@127.0.0.1:$monitor_port/pg_auto_failover?sslmode=disable"
    local state want
    for name in $HERALD_FAILOVER_NODES; do
        port=$(herald_failover_port "$dir" "$name") || return 1
        herald_log "creating data node $name in $dir/$name on 127.0.0.1:$port"
        # The first node initdbs and registers as single; the second one registers as a standby of
        # it and pg_basebackups from it, so the first must be running by then.
        if ! herald_failover_autoctl "$dir" create postgres --pgdata "$dir/$name" --pgport "$port" \
            --pgctl "$PG_BIN/pg_ctl" --hostname 127.0.0.1 --listen 127.0.0.1 --name "$name" \
            --auth trust --no-ssl --monitor "$monitor_uri" >>"$dir/$name.log" 2>&1; then
            herald_log "error: pg_autoctl create postgres for $name failed; the end of $dir/$name.log:"
            tail -n 20 "$dir/$name.log" >&2
            return 1
        fi
        herald_failover_start "$dir" "$name" || return 1
        want="single"
        [ "$name" = node1 ] || want="primary secondary"
        while :; do
            state=$(herald_failover_state "$dir" 2>/dev/null | awk '$3 == $4 { print $3 }' | sort | xargs) || state=""
            [ "$state" = "$want" ] && break
            if ! herald_failover_alive "$dir" "$name" || [ $((SECONDS - started)) -ge "$timeout" ]; then
                herald_log "error: the formation did not reach '$want' (it is at: $(herald_failover_state "$dir" 2>/dev/null | xargs)); the end of $dir/$name.log:"
                tail -n 20 "$dir/$name.log" >&2
                return 1
            fi
            sleep 0.3
        done
    done

    local primary primary_port
    primary=$(herald_failover_primary "$dir") || return 1
    primary_port=${primary#* }
    herald_log "formation ready in $((SECONDS - started))s: primary ${primary% *} on 127.0.0.1:$primary_port, monitor on 127.0.0.1:$monitor_port"
    # The primary replicates synchronously to the secondary, so the role and database are there too.
    HERALD_PG_SOCKET='' herald_pg_bootstrap "$primary_port" herald herald herald || return 1
}

# herald_failover_url DIR — the application's URL: both nodes, libpq picks the one that takes writes.
herald_failover_url() {
    local dir p1 p2
    dir=$(herald_failover_dir "${1:-}") || return 1
    p1=$(herald_failover_port "$dir" node1) && p2=$(herald_failover_port "$dir" node2) || return 1
    printf 'postgres://herald:herald@127.0.0.1:%s,127.0.0.1:%s/herald?target_session_attrs=read-write\n' "$p1" "$p2"
}

# herald_failover_primary DIR — prints "NAME PORT" of the node that the monitor has as primary
# (reported primary, wait_primary, join_primary, apply_settings or single, and not being demoted).
herald_failover_primary() {
    local dir state found
    dir=$(herald_failover_dir "${1:-}") || return 1
    state=$(herald_failover_state "$dir") || { herald_log "error: the monitor of $dir does not answer"; return 1; }
    found=$(printf '%s\n' "$state" | awk '
        $3 ~ /^(primary|wait_primary|join_primary|apply_settings|single)$/ &&
        $4 !~ /^(draining|demote_timeout|demoted|prepare_maintenance|maintenance)$/ { print $1, $2; exit }')
    if [ -z "$found" ]; then
        herald_log "error: no primary in $dir now; the monitor has: $(printf '%s\n' "$state" | xargs)"
        return 1
    fi
    printf '%s\n' "$found"
}

# herald_failover_kill_primary DIR — kills the primary hard, its `pg_autoctl run` (so nothing restarts
# PostgreSQL) and its postmaster and backends, all with SIGKILL at once: a machine that is gone.
# Records the node in DIR/killed and prints its name.
herald_failover_kill_primary() {
    local dir primary name port
    dir=$(herald_failover_dir "${1:-}") || return 1
    herald_failover_ready || return 1
    primary=$(herald_failover_primary "$dir") || return 1
    name=${primary% *} port=${primary#* }
    rm -f "$dir/killed-at"
    herald_failover_kill "$dir" "$name" "$dir/killed-at"
    if herald_failover_psql "$port" postgres -c 'SELECT 1' >/dev/null 2>&1; then
        herald_log "error: $name still answers on 127.0.0.1:$port after SIGKILL"
        return 1
    fi
    printf '%s\n' "$name" >"$dir/killed"
    herald_log "killed the primary $name (127.0.0.1:$port): pg_autoctl and PostgreSQL, SIGKILL"
    printf '%s\n' "$name"
}

# herald_failover_wait_primary DIR TIMEOUT_SECONDS — waits until the node that was not killed (any
# node when none was) takes writes: a new session on it is not in recovery and not read-only (what
# libpq's target_session_attrs=read-write asks; a node being promoted is out of recovery but kept
# read-only until the monitor lets it write), and the monitor reports it primary or wait_primary.
# Prints the seconds waited, to a tenth.
herald_failover_wait_primary() {
    if [ $# -ne 2 ]; then
        herald_log "error: usage: herald_failover_wait_primary DIR TIMEOUT_SECONDS"
        return 1
    fi
    local dir timeout=$2 killed="" killed_at name candidates="" start now answer state
    dir=$(herald_failover_dir "$1") || return 1
    case $timeout in '' | *[!0-9]*) herald_log "error: TIMEOUT_SECONDS must be a number of seconds, not '$timeout'"; return 1 ;; esac
    herald_failover_ready || return 1
    killed=$(cat "$dir/killed" 2>/dev/null) || killed=""
    for name in $HERALD_FAILOVER_NODES; do
        [ "$name" = "$killed" ] || candidates+=" $name"
    done
    start=$(date +%s%N)
    while :; do
        state=$(herald_failover_state "$dir" 2>/dev/null) || state=""
        for name in $candidates; do
            printf '%s\n' "$state" | awk -v n="$name" '$1 == n && $3 ~ /^(primary|wait_primary)$/ { ok = 1 } END { exit !ok }' || continue
            answer=$(HERALD_FAILOVER_CONNECT_TIMEOUT=2 herald_failover_psql "$(herald_failover_port "$dir" "$name")" postgres -At \
                -c "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')" 2>/dev/null) || answer=""
            if [ "$answer" = "f|off" ]; then
                now=$(date +%s%N)
                killed_at=$(cat "$dir/killed-at" 2>/dev/null) || killed_at=""
                if [ -n "$killed" ] && [ -n "$killed_at" ]; then
                    herald_log "$name is the primary and takes writes, $(awk -v ns="$((now - killed_at))" 'BEGIN { printf "%.1f", ns / 1e9 }')s after $killed was killed"
                else
                    herald_log "$name is the primary and takes writes"
                fi
                awk -v ns="$((now - start))" 'BEGIN { printf "%.1f\n", ns / 1e9 }'
                return 0
            fi
        done
        now=$(date +%s%N)
        if [ $(((now - start) / 1000000000)) -ge "$timeout" ]; then
            herald_log "error: no writable primary among$candidates after ${timeout}s; the monitor has: $(printf '%s\n' "$state" | xargs)"
            return 1
        fi
        sleep 0.25
    done
}

# herald_failover_destroy DIR — stops the formation (pg_autoctl stop --fast on the nodes and the
# monitor, SIGKILL for whatever is left after 30 s), removes stale sockets of its ports and DIR.
# Never fails; does nothing for a DIR that herald_failover_create did not make.
herald_failover_destroy() {
    local dir=${1:-} name _ port lock pid
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    dir=$(readlink -f "$dir") || return 0
    if [ ! -f "$dir/.herald-failover" ]; then
        herald_log "warning: $dir holds no formation of herald_failover_create: left alone"
        return 0
    fi
    [ -n "${HERALD_PG_AUTOCTL:-}" ] || HERALD_PG_AUTOCTL=$(herald_failover_find_autoctl)
    [ -n "${PG_BIN:-}" ] || PG_BIN=$(herald_pg_find_bin)
    if [ -n "$HERALD_PG_AUTOCTL" ] && [ -n "$PG_BIN" ]; then
        for name in $HERALD_FAILOVER_NODES monitor; do
            if herald_failover_alive "$dir" "$name"; then
                herald_failover_autoctl "$dir" stop --pgdata "$dir/$name" --fast >>"$dir/$name.log" 2>&1 || true
            fi
        done
        for _ in $(seq 150); do
            herald_failover_alive "$dir" node1 || herald_failover_alive "$dir" node2 || herald_failover_alive "$dir" monitor || break
            sleep 0.2
        done
    fi
    for name in $HERALD_FAILOVER_NODES monitor; do
        herald_failover_kill "$dir" "$name"
        # A PostgreSQL killed with SIGKILL leaves its socket and lock file behind.
        port=$(cat "$dir/$name.port" 2>/dev/null) || port=""
        lock=$HERALD_FAILOVER_SOCKDIR/.s.PGSQL.$port.lock
        if [ -n "$port" ] && [ -f "$lock" ]; then
            pid=$(head -n 1 "$lock" 2>/dev/null) || pid=""
            if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
                rm -f "$lock" "$HERALD_FAILOVER_SOCKDIR/.s.PGSQL.$port"
            fi
        fi
    done
    rm -rf "$dir" && herald_log "formation in $dir stopped and removed"
    return 0
}
