# shellcheck shell=bash
# ops/bench history (issue #17, item 5), sourced by ops/bench with the helpers of `scale` defined: the accept
# and claim rates of Herald with an empty history and with HERALD_BENCH_HISTORY (default 10,000,000)
# messages of history (delivered over the last 30 days, each with its two events, in the partitions Herald
# would have put them in), on two databases of the one PostgreSQL (fsync on), measured in turns
# (HERALD_BENCH_ROUNDS, default 4, rounds of: empty then full, full then empty) so that the machine's drift
# falls on both alike:
#   accept  POST /v1/mail/single 2xx/s: one api process on the database, wrk 64 connections, 10 s
#   claim   messages/s through the scheduler's database work: 4 pgbench clients, each looping the claim of
#           100 due messages and the record of their outcomes (ops/lib/history-claim.pgbench, the statements
#           of DeliveryStore.claim and .record, retried on 40001 as Database.transaction does) for 10 s over a
#           queue of HERALD_BENCH_QUEUE (150,000) due messages
# Prints each round, the medians and the ratios full/empty (target: within 10 %, i.e. >= 0.90).
# HERALD_BENCH_PARTS="rates migrate" (default both): the accept and claim rates, the online migration.
parts=" ${HERALD_BENCH_PARTS:-rates migrate} "
history_rows=${HERALD_BENCH_HISTORY:-10000000}
rounds=${HERALD_BENCH_ROUNDS:-4}
queue_rows=${HERALD_BENCH_QUEUE:-150000}
tenant_id=$(psql_system -c "SELECT id FROM tenants LIMIT 1" | tail -1)
pgbench=$PG_BIN/pgbench
[ -x "$pgbench" ] || { herald_log "error: $pgbench is missing"; exit 1; }

# history_clean DB — the queue of DB emptied (what a round accepted or did not claim), and vacuumed.
history_clean() {
    bench_db=$1 psql_system -c "DELETE FROM messages WHERE expires_on IS NULL" -c "VACUUM (ANALYZE) messages_queue" >/dev/null
}

# history_accept DB ROUND — one api process on DB, warmed up, then wrk for 10 s (wrk_spread: accept_DB_ROUND_*).
history_accept() {
    local db=$1 round=$2 port
    port=$(herald_free_port)
    scale_start api "api-$db-$round" HERALD_HTTP_PORT="$port" DATABASE_URL="postgres://herald:herald@127.0.0.1:$pgport/$db"
    api_pids=("$started")
    api_ports=("$port")
    if ! (wait_listening "$port" "$started" "herald api on $db") ||
        ! curl -sf -o /dev/null --retry 50 --retry-delay 1 --retry-all-errors "http://127.0.0.1:$port/readyz"; then
        herald_log "error: herald api on $db did not become ready; the end of its log:"
        tail -n 20 "$started_log" >&2
        exit 1
    fi
    spread_lua "$workdir/send.lua" "$port" >"$workdir/send-history.lua"
    wrk -t2 -c16 -d2s -s "$workdir/send-history.lua" "http://127.0.0.1:$port/v1/mail/single" >/dev/null
    wrk_spread "accept_${db}_$round" "  accept on $db" "$workdir/send-history.lua" /v1/mail/single
    scale_stop api "${api_pids[@]}"
}

# history_claim DB ROUND — HERALD_BENCH_QUEUE due messages queued on DB, then 4 pgbench clients claim and record
# them for 10 s; records claim_DB_ROUND (messages/s) and claim_DB_ROUND_retried.
history_claim() {
    local db=$1 round=$2 output done seconds retried failed
    PGPASSWORD=herald psql -X -q -h 127.0.0.1 -p "$pgport" -U herald "$db" -v n="$queue_rows" -v tenant="$tenant_id" \
        -f ops/lib/history-queue.sql >/dev/null
    bench_db=$db psql_system -c "VACUUM (ANALYZE) messages_queue" >/dev/null
    psql_super -c "CHECKPOINT" >/dev/null
    output=$(PGPASSWORD=herald "$pgbench" -M extended -n -f ops/lib/history-claim.pgbench -c 4 -j 2 -T 10 --max-tries=10 \
        -h 127.0.0.1 -p "$pgport" -U herald "$db" 2>&1) || true
    done=$(awk '/number of transactions actually processed/ {print $NF}' <<<"$output")
    seconds=$(awk '/^duration:/ {print $2}' <<<"$output")
    retried=$(awk '/number of transactions retried/ {print $5}' <<<"$output")
    failed=$(awk '/number of failed transactions/ {print $5}' <<<"$output")
    if [ -z "$done" ]; then
        herald_log "error: pgbench on $db failed:"
        tail -n 5 <<<"$output" >&2
        exit 1
    fi
    result "claim_${db}_$round" "$(awk -v n="$done" -v s="${seconds:-10}" 'BEGIN {printf "%.0f", n * 100 / s}')"
    result "claim_${db}_${round}_retried" "${retried:-0}"
    printf '  claim on %s: %s claims of 100 (and their records) in %s s = %s messages/s; %s retried, %s failed after 10 tries\n' "$db" \
        "$done" "${seconds:-10}" "$(awk -v n="$done" -v s="${seconds:-10}" 'BEGIN {printf "%.0f", n * 100 / s}')" "${retried:-0}" "${failed:-0}"
}

# history_migrate — the online migration at scale: a database migrated to 0029 (the release before), with
# HERALD_BENCH_MIGRATE_ROWS (2,000,000) messages and twice as many events in the old layout, migrated by
# `herald migrate` while a writer of the previous release (ops/lib/history-old-writer.pgbench, 200/s) goes on;
# then the upkeep moves the waiting rows out of the legacy partitions. Prints each migration's time, the
# writer's slowest transaction per second, and whether every row is there once.
history_migrate() {
    local rows=${HERALD_BENCH_MIGRATE_ROWS:-2000000} mig=$workdir/migrations-0029 writer began before after queue
    echo "--- the online migration: $rows messages and $((2 * rows)) events in the layout of 0029, then migrations 0030-0036 (the history, the statistics, the quota leases) under a writer"
    mkdir -p "$mig"
    for f in Migrations/*.sql; do
        [[ $(basename "$f") < 0030 ]] && cp "$f" "$mig/"
    done
    PGPASSWORD=herald psql -X -q -h 127.0.0.1 -p "$pgport" -U herald herald -c "CREATE DATABASE herald_old"
    DATABASE_URL="postgres://herald:herald@127.0.0.1:$pgport/herald_old" HERALD_MIGRATIONS_DIR=$mig "$herald" migrate >"$workdir/migrate-old.log" 2>&1
    bench_db=herald_old psql_system -c "INSERT INTO tenants (id, name) VALUES ('$tenant_id', 'bench')" >/dev/null
    began=$SECONDS
    PGPASSWORD=herald psql -X -q -h 127.0.0.1 -p "$pgport" -U herald herald_old -v rows="$rows" -v tenant="$tenant_id" \
        -f ops/lib/history-fill-old.sql >/dev/null
    bench_db=herald_old psql_system -c "VACUUM (ANALYZE)" >/dev/null 2>&1
    psql_super -c "CHECKPOINT" >/dev/null
    before=$(bench_db=herald_old psql_system -c "SELECT (SELECT count(*) FROM messages) || ' ' || (SELECT count(*) FROM events)" | tail -1)
    echo "  old layout written in $((SECONDS - began)) s: $(psql_system -c "SELECT pg_size_pretty(pg_database_size('herald_old'))" | tail -1)"
    mkdir -p "$workdir/writer"
    # The writer runs for a fixed time and ends by itself (a stopped pgbench does not flush its log), which
    # must cover the migration and the upkeep after it (checked below).
    writer_seconds=${HERALD_BENCH_WRITER_SECONDS:-60}
    writer_began=$SECONDS
    PGPASSWORD=herald env -C "$workdir/writer" "$pgbench" -n -f "$PWD/ops/lib/history-old-writer.pgbench" -c 2 -j 1 -R 200 -T "$writer_seconds" \
        -l --aggregate-interval=1 -h 127.0.0.1 -p "$pgport" -U herald herald_old >"$workdir/writer.out" 2>&1 &
    writer=$!
    extra_pids+=("$writer")
    sleep 3
    began=$(date +%s.%N)
    migration_began=$began
    echo "  herald migrate began at $(date -u -d @"${began%.*}" +%H:%M:%S)"
    DATABASE_URL="postgres://herald:herald@127.0.0.1:$pgport/herald_old" HERALD_MIGRATIONS_DIR=$PWD/Migrations LOG_LEVEL=info \
        "$herald" migrate >"$workdir/migrate-new.log" 2>&1 || { herald_log "error: the migration failed:"; tail -5 "$workdir/migrate-new.log" >&2; exit 1; }
    awk -v began="$began" '/applied migration/ && /003[0-9]/ {print "  " $0}' "$workdir/migrate-new.log" | sed -E 's/^ +([^ ]+) .*migration=([^ ]+).*/  applied \2 at \1/'
    echo "  herald migrate (0030-0036) took $(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
    began=$(date +%s.%N)
    queue=0
    while step=$(bench_db=herald_old psql_system -c "SELECT coalesce(herald_partition_step(herald_today(), false), '')" | tail -1) && [ -n "$step" ]; do
        queue=$((queue + 1))
        [[ $step == moved* ]] && last_move=$step
    done
    echo "  the upkeep after it (as the scheduler runs it at start): $queue steps, one transaction each, in $(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s (the last: ${last_move:-no move})"
    if [ $((SECONDS - writer_began)) -ge "$writer_seconds" ]; then
        herald_log "warning: the migration outlasted the writer ($writer_seconds s; HERALD_BENCH_WRITER_SECONDS): its numbers cover only part of it"
    fi
    wait "$writer" 2>/dev/null || true
    cat "$workdir"/writer/pgbench_log.* 2>/dev/null | awk -v began="$migration_began" '{n += $2; if ($6 > max) {max = $6; at = $1}; if ($2 == 0) idle++; secs++}
        END {printf "  the writer (200/s): %d transactions in %d s; its slowest %.0f ms (in the second from %+.0f s of the migration'"'"'s start); seconds with none committed: %d\n",
                    n, secs, max / 1000, at - began, idle}'
    after=$(bench_db=herald_old psql_system -c "SELECT (SELECT count(*) FROM messages) || ' ' || (SELECT count(*) FROM events) || ' ' ||
        (SELECT count(DISTINCT id) FROM messages) || ' ' || (SELECT count(*) FROM ONLY messages_queue) || ' ' || (SELECT count(*) FROM ONLY messages_legacy)" | tail -1)
    echo "  messages, events before: $before; after (messages, events, distinct message ids, in messages_queue, in messages_legacy): $after"
}

history_rates() {
# The full database starts as a copy of the empty one (the same tenant, keys and token), then gets its history.
PGPASSWORD=herald psql -X -q -h 127.0.0.1 -p "$pgport" -U herald herald -c "CREATE DATABASE herald_full TEMPLATE herald"
herald_log "history: writing $history_rows messages and $((2 * history_rows)) events into herald_full"
began=$SECONDS
PGPASSWORD=herald psql -X -q -h 127.0.0.1 -p "$pgport" -U herald herald_full -v rows="$history_rows" -v tenant="$tenant_id" \
    -f ops/lib/history-fill.sql 2>&1 | grep -E 'NOTICE|ERROR' | tail -3
for db in herald herald_full; do
    bench_db=$db psql_system -c "VACUUM (ANALYZE)" >/dev/null 2>&1
done
psql_super -c "CHECKPOINT" >/dev/null
fill_seconds=$((SECONDS - began))
full_size=$(psql_system -c "SELECT pg_size_pretty(pg_database_size('herald_full'))" | tail -1)
partitions=$(bench_db=herald_full psql_system -c "SELECT string_agg(p || ' ' || n, ', ') FROM (SELECT inhparent::regclass::text AS p, count(*) AS n
    FROM pg_inherits WHERE inhparent IN ('messages'::regclass, 'events'::regclass) GROUP BY 1 ORDER BY 1) x" | tail -1)
echo "history written in ${fill_seconds} s: herald_full is $full_size; partitions: $partitions"

# Each measurement starts from a checkpoint, and the rounds take turns in both orders (empty first, then full
# first), so that neither database always follows the other's writes.
for round in $(seq "$rounds"); do
    echo "--- round $round of $rounds"
    order="herald herald_full"
    [ $((round % 2)) = 0 ] && order="herald_full herald"
    for db in $order; do
        history_clean "$db"
        psql_super -c "CHECKPOINT" >/dev/null
        history_accept "$db" "$round"
    done
    for db in $order; do
        history_clean "$db"
        history_claim "$db" "$round"
    done
done

echo
echo "=== history: $history_rows messages of history against none (medians of $rounds rounds)"
python3 - "$results" "$rounds" <<'PY'
import statistics, sys
values = {}
for line in open(sys.argv[1]):
    key, _, value = line.strip().partition(" ")
    values[key] = value
rounds = int(sys.argv[2])
def median(kind, db):
    key = (lambda r: f"accept_{db}_{r}_rate") if kind == "accept" else (lambda r: f"claim_{db}_{r}")
    return statistics.median(float(values.get(key(r), 0) or 0) for r in range(1, rounds + 1))
worst = 1.0
for kind, unit in (("accept", "POST /v1/mail/single 2xx/s"), ("claim", "messages claimed and recorded/s")):
    empty, full = median(kind, "herald"), median(kind, "herald_full")
    ratio = full / empty if empty else 0
    worst = min(worst, ratio)
    print(f"{kind:7s} {unit:34s} empty {empty:9.0f}   full {full:9.0f}   full/empty {ratio:.2f}")
print(f"target: within 10 % (full/empty >= 0.90): {'met' if worst >= 0.90 else 'missed'} (worst ratio {worst:.2f})")
PY
echo "(one PostgreSQL, fsync on, shared_buffers 256MB; herald, wrk, pgbench and PostgreSQL share this machine's $(nproc) cores)"
echo
}

[[ $parts == *" rates "* ]] && history_rates
[[ $parts == *" migrate "* ]] && history_migrate
exit 0
