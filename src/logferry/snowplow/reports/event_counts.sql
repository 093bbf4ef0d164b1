-- Snowplow events by type, app and day
SELECT
    CAST(collector_tstamp AS DATE) AS day,
    coalesce(app_id, '(none)') AS app_id,
    event,
    count(*) AS events
FROM events
GROUP BY ALL
ORDER BY day, app_id, events DESC, event
