-- Top pages, referrers, user agents (browser and OS families, classified once per
-- distinct user agent), and the hourly distribution (UTC).

-- setup
CREATE OR REPLACE TEMP TABLE _agents AS
WITH ua AS (
    SELECT user_agent, count(*) AS requests, count(DISTINCT visitor) AS visitors FROM req GROUP BY 1
)
SELECT user_agent, requests, visitors,
    CASE
        WHEN user_agent IS NULL OR user_agent IN ('', '-') THEN 'None'
        WHEN regexp_matches(user_agent, '(?i)bot|crawl|spider|slurp|facebookexternalhit') THEN 'Crawler'
        WHEN regexp_matches(user_agent, '(?i)^(curl|wget|python|java|go-http|okhttp|apache-httpclient|libwww|httpie)') THEN 'Tool'
        WHEN regexp_matches(user_agent, 'Edg(e|A|iOS)?/') THEN 'Edge'
        WHEN regexp_matches(user_agent, 'OPR/|Opera') THEN 'Opera'
        WHEN regexp_matches(user_agent, 'SamsungBrowser/') THEN 'Samsung Internet'
        WHEN regexp_matches(user_agent, 'Chrome/|CriOS/|Chromium/') THEN 'Chrome'
        WHEN regexp_matches(user_agent, 'Firefox/|FxiOS/') THEN 'Firefox'
        WHEN regexp_matches(user_agent, 'MSIE |Trident/') THEN 'Internet Explorer'
        WHEN regexp_matches(user_agent, 'Safari/|AppleWebKit/') THEN 'Safari'
        ELSE 'Other'
    END AS browser,
    CASE
        WHEN user_agent IS NULL OR user_agent IN ('', '-') THEN 'None'
        WHEN regexp_matches(user_agent, 'Windows') THEN 'Windows'
        WHEN regexp_matches(user_agent, 'iPhone|iPad|iPod') THEN 'iOS'
        WHEN regexp_matches(user_agent, 'Android') THEN 'Android'
        WHEN regexp_matches(user_agent, 'Mac OS X|Macintosh') THEN 'macOS'
        WHEN regexp_matches(user_agent, 'CrOS') THEN 'ChromeOS'
        WHEN regexp_matches(user_agent, 'Linux|X11|FreeBSD') THEN 'Linux'
        ELSE 'Other'
    END AS os
FROM ua;

-- section: pages
SELECT path, count(*) AS requests, count(DISTINCT visitor) AS visitors,
       coalesce(sum(bytes_sent), 0) AS bytes_sent
FROM req WHERE path IS NOT NULL
GROUP BY path ORDER BY requests DESC, path LIMIT getvariable('top');

-- section: referrers
SELECT referer, count(*) AS requests, count(DISTINCT visitor) AS visitors
FROM req WHERE referer IS NOT NULL AND referer NOT IN ('', '-')
GROUP BY referer ORDER BY requests DESC, referer LIMIT getvariable('top');

-- section: browsers
SELECT browser, sum(requests) AS requests, round(sum(requests) / sum(sum(requests)) OVER (), 4) AS share
FROM _agents GROUP BY browser ORDER BY requests DESC, browser;

-- section: operating_systems
SELECT os, sum(requests) AS requests, round(sum(requests) / sum(sum(requests)) OVER (), 4) AS share
FROM _agents GROUP BY os ORDER BY requests DESC, os;

-- section: user_agents
SELECT user_agent, browser, os, requests FROM _agents
ORDER BY requests DESC, user_agent NULLS LAST LIMIT getvariable('top');

-- section: hourly
WITH c AS (
    SELECT _fdiv(ts_us, 3600000000) % 24 AS hour, count(*) AS n FROM req WHERE ts_us IS NOT NULL GROUP BY 1
)
SELECT h.hour, coalesce(c.n, 0) AS requests
FROM range(24) h(hour) LEFT JOIN c USING (hour) ORDER BY h.hour;
