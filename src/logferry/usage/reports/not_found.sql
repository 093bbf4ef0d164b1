-- Unavailable links: 404 and 410 paths with their counts and top referers.

-- section: paths
-- (grouped by the path's hash: see top.sql.  status BETWEEN 404 AND 410 before the IN: the
-- table scan applies a range itself, reading the other columns of those rows only; an IN
-- list is checked after reading every row's: 1M rows, 0.029 -> 0.023 CPU s for the referers)
SELECT any_value(path) AS path,
       count(*) AS hits,
       count(*) FILTER (WHERE status = 404) AS not_found_404,
       count(*) FILTER (WHERE status = 410) AS gone_410,
       count(DISTINCT visitor) AS visitors,
       min("timestamp") AS first_seen,
       max("timestamp") AS last_seen
FROM req WHERE status BETWEEN 404 AND 410 AND status IN (404, 410)
GROUP BY hash(path) ORDER BY hits DESC, path LIMIT getvariable('top');

-- section: referers
SELECT path, referer, count(*) AS hits
FROM req WHERE status BETWEEN 404 AND 410 AND status IN (404, 410) AND referer IS NOT NULL AND referer NOT IN ('-', '')
GROUP BY path, referer
QUALIFY row_number() OVER (PARTITION BY path ORDER BY count(*) DESC, referer) <= 3
ORDER BY hits DESC, path, referer LIMIT getvariable('top');
