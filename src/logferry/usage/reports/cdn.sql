-- CDN: cache hit ratio by cache status, bytes served, TTFB percentiles, by edge location
-- and by site (service).  Only requests that carry a cache status count here.  Hits are
-- hit, RefreshHit, OriginShieldHit, stale, updating and revalidated (case-insensitive).

-- section: overall
SELECT count(*) AS requests,
       count(*) FILTER (WHERE is_hit) AS hits,
       round(count(*) FILTER (WHERE is_hit) / nullif(count(*), 0), 4) AS hit_ratio,
       coalesce(sum(bytes_sent), 0) AS bytes_sent,
       coalesce(sum(bytes_sent) FILTER (WHERE is_hit), 0) AS bytes_from_cache,
       round(quantile_cont(ttfb_ms, [0.5, 0.9, 0.99])[1], 3) AS ttfb_p50_ms,
       round(quantile_cont(ttfb_ms, [0.5, 0.9, 0.99])[2], 3) AS ttfb_p90_ms,
       round(quantile_cont(ttfb_ms, [0.5, 0.9, 0.99])[3], 3) AS ttfb_p99_ms
FROM cdn;

-- section: by_cache_status
-- (statuses that differ only in case are one, shown as their most frequent spelling)
WITH s AS (SELECT lower(cache_status) AS k, count(*) AS requests, round(count(*) / sum(count(*)) OVER (), 4) AS share,
                  coalesce(sum(bytes_sent), 0) AS bytes_sent, round(quantile_cont(ttfb_ms, 0.5), 3) AS ttfb_p50_ms
           FROM cdn GROUP BY 1),
     spelling AS (SELECT lower(cache_status) AS k, first(cache_status ORDER BY n DESC, cache_status) AS cache_status
                  FROM (SELECT cache_status, count(*) AS n FROM cdn GROUP BY 1) GROUP BY 1)
SELECT spelling.cache_status, s.requests, s.share, s.bytes_sent, s.ttfb_p50_ms
FROM s JOIN spelling USING (k) ORDER BY requests DESC, cache_status;

-- section: by_edge
SELECT edge_location, count(*) AS requests,
       round(count(*) FILTER (WHERE is_hit) / count(*), 4) AS hit_ratio,
       coalesce(sum(bytes_sent), 0) AS bytes_sent,
       round(quantile_cont(ttfb_ms, [0.5, 0.9])[1], 3) AS ttfb_p50_ms,
       round(quantile_cont(ttfb_ms, [0.5, 0.9])[2], 3) AS ttfb_p90_ms
FROM cdn GROUP BY edge_location ORDER BY requests DESC, edge_location NULLS LAST LIMIT getvariable('top');

-- section: by_site
SELECT coalesce(site, host) AS site, count(*) AS requests,
       round(count(*) FILTER (WHERE is_hit) / count(*), 4) AS hit_ratio,
       coalesce(sum(bytes_sent), 0) AS bytes_sent,
       round(quantile_cont(ttfb_ms, [0.5, 0.9])[1], 3) AS ttfb_p50_ms,
       round(quantile_cont(ttfb_ms, [0.5, 0.9])[2], 3) AS ttfb_p90_ms
FROM cdn GROUP BY 1 ORDER BY requests DESC, site NULLS LAST LIMIT getvariable('top');
