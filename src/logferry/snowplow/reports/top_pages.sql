-- Snowplow: top pages by page views (and page pings)
SELECT
    page_url,
    count(*) FILTER (WHERE event = 'page_view') AS page_views,
    count(*) FILTER (WHERE event = 'page_ping') AS page_pings,
    count(DISTINCT domain_userid) AS users
FROM events
WHERE page_url IS NOT NULL
GROUP BY page_url
ORDER BY page_views DESC, page_pings DESC, page_url
LIMIT 50
