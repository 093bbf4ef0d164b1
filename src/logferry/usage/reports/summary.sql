-- Summary: requests, unique visitors (client IP + user agent per day), bytes, time span,
-- and what is in the database (files and bad rows are not filtered by time or site).

-- section: totals
SELECT count(*) AS requests,
       count(DISTINCT visitor) AS visitors,
       coalesce(sum(bytes_sent), 0) AS bytes_sent,
       min("timestamp") AS first_request,
       max("timestamp") AS last_request,
       coalesce(epoch(max("timestamp")) - epoch(min("timestamp")), 0) AS span_seconds,
       (SELECT count(*) FROM files) AS files,
       (SELECT coalesce(sum(lines), 0) FROM files) AS lines,
       (SELECT count(*) FROM bad_rows) AS bad_rows
FROM req;

-- section: formats
SELECT format, count(*) AS files, sum(lines) AS lines, sum(records) AS records,
       sum(bad_rows) AS bad_rows, min(first_timestamp) AS first_request, max(last_timestamp) AS last_request
FROM files GROUP BY format ORDER BY files DESC, format;

-- section: files
SELECT file_id, path, format, lines, records, bad_rows
FROM files ORDER BY file_id LIMIT getvariable('top');
