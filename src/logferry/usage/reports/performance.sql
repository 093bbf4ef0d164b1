-- Performance: percentiles (linear interpolation, quantile_cont) of duration_ms, overall
-- and per path; slowest paths by p99; slowest single requests; latency histogram.

-- section: overall
SELECT count(duration_ms) AS requests,
       round(quantile_cont(duration_ms, 0.5), 3) AS p50_ms,
       round(quantile_cont(duration_ms, 0.9), 3) AS p90_ms,
       round(quantile_cont(duration_ms, 0.99), 3) AS p99_ms,
       max(duration_ms) AS max_ms,
       round(avg(duration_ms), 3) AS avg_ms
FROM req;

-- section: slowest_paths
SELECT path, count(*) AS requests,
       round(quantile_cont(duration_ms, 0.5), 3) AS p50_ms,
       round(quantile_cont(duration_ms, 0.9), 3) AS p90_ms,
       round(quantile_cont(duration_ms, 0.99), 3) AS p99_ms,
       max(duration_ms) AS max_ms
FROM req WHERE duration_ms IS NOT NULL
GROUP BY path ORDER BY p99_ms DESC, path LIMIT getvariable('top');

-- section: slowest_requests
SELECT "timestamp", method, path, status, duration_ms, client_ip
FROM req WHERE duration_ms IS NOT NULL
ORDER BY duration_ms DESC, "timestamp", line_number LIMIT getvariable('top');

-- section: histogram
WITH bounds(lo, hi, label) AS (VALUES
    (0, 10, '<10 ms'), (10, 25, '10-25 ms'), (25, 50, '25-50 ms'), (50, 100, '50-100 ms'),
    (100, 250, '100-250 ms'), (250, 500, '250-500 ms'), (500, 1000, '0.5-1 s'),
    (1000, 2500, '1-2.5 s'), (2500, 5000, '2.5-5 s'), (5000, 10000, '5-10 s'),
    (10000, NULL, '>=10 s'))
SELECT b.label, b.lo AS from_ms, b.hi AS to_ms, count(r.duration_ms) AS requests
FROM bounds b LEFT JOIN req r
  ON r.duration_ms >= b.lo AND (b.hi IS NULL OR r.duration_ms < b.hi)
GROUP BY ALL ORDER BY b.lo;
