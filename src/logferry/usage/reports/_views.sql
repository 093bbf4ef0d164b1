-- Views every report reads; the runner sets the variables first:
--   since, until (TIMESTAMPTZ or NULL), site (VARCHAR or NULL), bucket and chart_bucket
--   (INTERVAL), threshold (DOUBLE), gap_buckets (INTEGER), top (INTEGER).
-- A visitor is one client IP + user agent on one (UTC) day.
CREATE OR REPLACE TEMP VIEW req AS
SELECT r.*,
       CAST(r."timestamp" AS DATE) || '|' || coalesce(r.client_ip, '') || '|' || coalesce(r.user_agent, '') AS visitor
FROM requests r
WHERE (getvariable('since') IS NULL OR r."timestamp" >= getvariable('since'))
  AND (getvariable('until') IS NULL OR r."timestamp" < getvariable('until'))
  AND (getvariable('site') IS NULL OR r.site = getvariable('site') OR r.host = getvariable('site'));

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
