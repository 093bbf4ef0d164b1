-- Snowplow: self-describing (unstructured) event schemas
SELECT
    unstruct_event_schema AS schema,
    count(*) AS events,
    min(collector_tstamp) AS first_seen,
    max(collector_tstamp) AS last_seen
FROM events
WHERE event = 'unstruct'
GROUP BY unstruct_event_schema
ORDER BY events DESC, schema
