-- Status codes and errors: counts and rates by status, class, path and over time.

-- section: status_codes
SELECT status, count(*) AS requests, round(count(*) / sum(count(*)) OVER (), 4) AS share
FROM req GROUP BY status ORDER BY requests DESC, status NULLS LAST;

-- section: classes
WITH s AS (SELECT status, count(*) AS n FROM req GROUP BY status)
SELECT CASE WHEN status IS NULL THEN 'none' ELSE CAST(status // 100 AS VARCHAR) || 'xx' END AS class,
       CAST(sum(n) AS BIGINT) AS requests, round(sum(n) / sum(sum(n)) OVER (), 4) AS share
FROM s GROUP BY class ORDER BY class;

-- section: errors_by_path
SELECT path, count(*) AS requests,
       count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS errors_4xx,
       count(*) FILTER (WHERE status BETWEEN 500 AND 599) AS errors_5xx,
       round(count(*) FILTER (WHERE status BETWEEN 400 AND 499) / count(*), 4) AS rate_4xx,
       round(count(*) FILTER (WHERE status BETWEEN 500 AND 599) / count(*), 4) AS rate_5xx
FROM req GROUP BY path
HAVING count(*) FILTER (WHERE status BETWEEN 400 AND 599) > 0
ORDER BY errors_4xx + errors_5xx DESC, path LIMIT getvariable('top');

-- section: errors_over_time
SELECT _ts(b) AS bucket, requests, errors_4xx, errors_5xx
FROM (SELECT _bkt(ts_us, getvariable('chart_bucket_us')) AS b,
             count(*) AS requests,
             count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS errors_4xx,
             count(*) FILTER (WHERE status BETWEEN 500 AND 599) AS errors_5xx
      FROM req WHERE ts_us IS NOT NULL GROUP BY b)
ORDER BY b;
