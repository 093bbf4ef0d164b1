-- Uptime: per bucket (variable `bucket`, default 5 minutes) availability = 1 - 5xx/requests.
-- A bucket is down when its 5xx share >= `threshold` (default 0.5), or when it lies in a run
-- of buckets without any request longer than `gap_buckets`.  Consecutive down buckets make
-- a down window.  availability_pct weighs requests; uptime_pct counts buckets.

-- setup
CREATE OR REPLACE TEMP TABLE _uptime AS
WITH b AS (
    SELECT _bkt(ts_us, getvariable('bucket_us')) AS b_us,
           count(*) AS requests,
           count(*) FILTER (WHERE status BETWEEN 500 AND 599) AS errors_5xx
    FROM req WHERE ts_us IS NOT NULL GROUP BY 1
), span AS (
    SELECT unnest(generate_series(min(b_us), max(b_us), getvariable('bucket_us'))) AS b_us FROM b
), u AS (
    SELECT _ts(s.b_us) AS bucket, coalesce(b.requests, 0) AS requests,
           coalesce(b.errors_5xx, 0) AS errors_5xx,
           row_number() OVER (ORDER BY s.b_us) AS idx
    FROM span s LEFT JOIN b USING (b_us)
), runs AS (
    SELECT *, requests = 0 AS empty,
           idx - row_number() OVER (PARTITION BY requests = 0 ORDER BY idx) AS run
    FROM u
), flagged AS (
    SELECT *, count(*) OVER (PARTITION BY empty, run) AS run_len FROM runs
)
SELECT bucket, requests, errors_5xx,
       CASE WHEN requests > 0 THEN round(1 - errors_5xx / requests, 4) END AS availability,
       CASE WHEN requests > 0 AND errors_5xx / requests >= getvariable('threshold') THEN 'errors'
            WHEN empty AND run_len > getvariable('gap_buckets') THEN 'no traffic'
       END AS down_reason,
       idx
FROM flagged;

-- section: totals
SELECT count(*) AS buckets,
       epoch(getvariable('bucket')) / 60 AS bucket_minutes,
       coalesce(sum(requests), 0) AS requests,
       coalesce(sum(errors_5xx), 0) AS errors_5xx,
       round(100 * (1 - sum(errors_5xx) / nullif(sum(requests), 0)), 3) AS availability_pct,
       count(*) FILTER (WHERE down_reason IS NOT NULL) AS down_buckets,
       round(100 * (1 - count(*) FILTER (WHERE down_reason IS NOT NULL) / nullif(count(*), 0)), 3) AS uptime_pct
FROM _uptime;

-- section: down_windows
WITH d AS (
    SELECT *, idx - row_number() OVER (ORDER BY idx) AS grp FROM _uptime WHERE down_reason IS NOT NULL
)
SELECT min(bucket) AS start, max(bucket) + getvariable('bucket') AS "end",
       count(*) AS buckets, sum(requests) AS requests, sum(errors_5xx) AS errors_5xx,
       string_agg(DISTINCT down_reason, ', ' ORDER BY down_reason) AS reason
FROM d GROUP BY grp ORDER BY start;

-- section: buckets
SELECT bucket, requests, errors_5xx, availability, down_reason FROM _uptime ORDER BY bucket;
