-- Views every report reads; the runner sets the variables first:
--   since, until (TIMESTAMPTZ or NULL), sites (VARCHAR[] or NULL: a filter, site or host is one
--   of them), scope (VARCHAR[] or NULL: a token's sites; the site column
--   only, never the client's Host header),
--   classes (INTEGER[] or NULL: status // 100 is one of them), formats (VARCHAR[] or NULL: the
--   file's format is one of them), bucket and chart_bucket
--   (INTERVAL; bucket_us and chart_bucket_us the same in microseconds), threshold (DOUBLE), gap_buckets (INTEGER), top (INTEGER);
--   and the temp tables _ua (every user agent classified, logferry.usage.ua) and _bots (the
--   agents left out: the bots with --no-bots, else none).
-- A visitor is one client IP + user agent on one (UTC) day.
-- Time arithmetic is done on epoch microseconds (integer maths; TIMESTAMPTZ functions go
-- through ICU and cost several times more per row):
--   _fdiv(a, b)    floor division, b > 0 (also for instants before 1970: // truncates)
--   _bkt(us, w)    start, in epoch microseconds, of the w-microsecond bucket holding us;
--                  buckets are aligned on 2000-01-03 00:00 UTC like time_bucket()
--   _hour(us)      hour of the (UTC) day, 0-23 (before 1970 too: % keeps the sign of a)
--   _ts(us)        epoch microseconds back to TIMESTAMPTZ (for the few output rows)
CREATE OR REPLACE TEMP MACRO _fdiv(a, b) AS a // b - CAST(a % b < 0 AS BIGINT);
CREATE OR REPLACE TEMP MACRO _bkt(us, w) AS _fdiv(us - 946857600000000, w) * w + 946857600000000;
CREATE OR REPLACE TEMP MACRO _hour(us) AS (_fdiv(us, 3600000000) % 24 + 24) % 24;
CREATE OR REPLACE TEMP MACRO _ts(us) AS to_timestamp(us / 1e6);

-- visitor: a 64-bit hash of (UTC day, client IP, user agent), NULL without a timestamp.
-- Counting distinct hashes instead of distinct strings is several times cheaper; two
-- visitors would have to collide on 64 bits to be counted as one.  A missing IP or agent
-- hashes as an empty one (the same hash as the rollups', lake/rollups.py).  The agent is
-- hashed as it is in its own branch, not through coalesce(user_agent, ''): coalesce
-- expanded the column's dictionary into every row's text, the branch hashes each distinct
-- agent once (the visitor 0.050 -> 0.037 CPU s per 1M rows).  Bots left out (_bots)
-- by an anti join: a NOT IN (subquery) in the WHERE made every report several times
-- slower even with _bots empty.
CREATE OR REPLACE TEMP VIEW req AS
SELECT r.*,
       CASE WHEN r."timestamp" IS NULL THEN NULL
            WHEN r.user_agent IS NULL
            THEN hash(_fdiv(epoch_us(r."timestamp"), 86400000000), coalesce(r.client_ip, ''), '')
            ELSE hash(_fdiv(epoch_us(r."timestamp"), 86400000000), coalesce(r.client_ip, ''), r.user_agent)
       END AS visitor,
       epoch_us(r."timestamp") AS ts_us
FROM requests r ANTI JOIN _bots b ON r.user_agent = b.user_agent
WHERE (getvariable('since') IS NULL OR r."timestamp" >= getvariable('since'))
  AND (getvariable('until') IS NULL OR r."timestamp" < getvariable('until'))
  AND (getvariable('sites') IS NULL OR list_contains(getvariable('sites'), r.site)
       OR list_contains(getvariable('sites'), r.host))
  AND (getvariable('scope') IS NULL OR list_contains(getvariable('scope'), r.site))
  AND (getvariable('classes') IS NULL OR list_contains(getvariable('classes'), r.status // 100))
  AND (getvariable('formats') IS NULL
       OR r.file_id IN (SELECT file_id FROM files WHERE list_contains(getvariable('formats'), format)));

CREATE OR REPLACE TEMP VIEW shop_req AS
SELECT q.* FROM req q JOIN files f USING (file_id) WHERE f.format = 'shop';

CREATE OR REPLACE TEMP VIEW ord AS
SELECT o.* FROM orders o SEMI JOIN req q ON q.file_id = o.file_id AND q.line_number = o.line_number;

CREATE OR REPLACE TEMP VIEW items AS
SELECT i.*, (i.net_unit_price - i.net_purchase_price) * i.units AS margin,
       i.net_unit_price * i.units AS revenue
FROM order_items i SEMI JOIN ord o ON o.file_id = i.file_id AND o.order_id = i.order_id;

CREATE OR REPLACE TEMP VIEW cdn AS
SELECT *, lower(cache_status) IN ('hit', 'refreshhit', 'originshieldhit', 'stale', 'updating', 'revalidated') AS is_hit
FROM req WHERE cache_status IS NOT NULL AND cache_status <> '-';
