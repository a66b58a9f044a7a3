-- The processes of an installation, and their shares of the cluster-wide limits.

-- Every running `herald serve` process: registered when it starts, seen again at each heartbeat (every
-- 2 s), removed when it stops gracefully. A process not seen for 10 s counts as gone; its row is swept
-- after 5 minutes. Installation-wide (no tenant rows), so no row-level security.
CREATE TABLE herald_processes (
    id uuid PRIMARY KEY,
    roles text[] NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    http_port integer,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_seen timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- A process's share of one cluster-wide limit (bucket, e.g. `tenant:<id>`): the rate it wants (its
-- demand, measured) and the rate it was granted, until expires_at. The grants of a bucket's live
-- shares never add up to more than its limit: a share is granted under the bucket's advisory lock
-- (herald_limit_shares) from what the other processes hold. Unlogged: shares are renewed every second
-- and worth nothing after a crash or a failover, when every process asks again.
CREATE UNLOGGED TABLE herald_limit_shares (
    bucket text NOT NULL,
    process_id uuid NOT NULL,
    wants double precision NOT NULL,
    granted double precision NOT NULL,
    -- Of a limit on whole things (connections): how many the process holds now, which may be more than
    -- its grant for a while after the grant shrank; nobody else is granted them until they are given back.
    holding double precision NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (bucket, process_id)
);
CREATE INDEX herald_limit_shares_process ON herald_limit_shares (process_id);

-- Locks p_buckets (advisory, transaction-scoped, in the order of their hashes, so that two exchanges
-- never wait on each other crosswise) and answers what the other live processes hold of each: the sum
-- of their wants and grants and their number; buckets nobody else holds have no row. Then one row per
-- live process (seen in the last 10 s), with a NULL bucket and the process's roles: a limit is shared
-- among the processes whose roles use it.
CREATE FUNCTION herald_limit_shares(p_process uuid, p_buckets text[])
    RETURNS TABLE (bucket text, wants double precision, granted double precision, holders int, roles text[])
    LANGUAGE plpgsql AS $$
DECLARE
    h bigint;
BEGIN
    FOR h IN SELECT DISTINCT hashtextextended(b, 0) FROM unnest(p_buckets) b ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(h);
    END LOOP;
    RETURN QUERY
        SELECT s.bucket, sum(s.wants), sum(greatest(s.granted, s.holding)), count(*)::int, NULL::text[]
        FROM herald_limit_shares s JOIN herald_processes p ON p.id = s.process_id
        WHERE s.bucket = ANY (p_buckets) AND s.process_id <> p_process AND s.expires_at > clock_timestamp()
          AND p.last_seen > clock_timestamp() - interval '10 seconds'
        GROUP BY s.bucket
        UNION ALL
        SELECT NULL, 0, 0, 0, p.roles FROM herald_processes p WHERE p.last_seen > clock_timestamp() - interval '10 seconds';
END
$$;

-- Records this process's shares after herald_limit_shares (same transaction, locks still held): each
-- bucket's wants, grant and holding for p_ttl_ms; a bucket with nothing wanted, granted or held is handed
-- back. Other processes' shares of these buckets that expired a minute ago are swept on the way (the
-- statement touches each row once: its own rows are only upserted or handed back).
CREATE FUNCTION herald_limit_record(p_process uuid, p_buckets text[], p_wants double precision[], p_granted double precision[],
                                    p_holding double precision[], p_ttl_ms int)
    RETURNS void
    LANGUAGE sql AS $$
    WITH given AS (
        SELECT * FROM unnest(p_buckets, p_wants, p_granted, p_holding) AS g (bucket, wants, granted, holding)
    ), swept AS (
        DELETE FROM herald_limit_shares s
        WHERE s.bucket = ANY (p_buckets)
          AND CASE WHEN s.process_id = p_process
                   THEN EXISTS (SELECT FROM given g WHERE g.bucket = s.bucket AND g.wants = 0 AND g.granted = 0 AND g.holding = 0)
                   ELSE s.expires_at < clock_timestamp() - interval '1 minute' END
    )
    INSERT INTO herald_limit_shares AS s (bucket, process_id, wants, granted, holding, expires_at)
    SELECT g.bucket, p_process, g.wants, g.granted, g.holding, clock_timestamp() + make_interval(secs => p_ttl_ms / 1000.0)
    FROM given g WHERE g.wants > 0 OR g.granted > 0 OR g.holding > 0
    ON CONFLICT (bucket, process_id) DO UPDATE SET wants = excluded.wants, granted = excluded.granted, holding = excluded.holding,
                                                  expires_at = excluded.expires_at
$$;
