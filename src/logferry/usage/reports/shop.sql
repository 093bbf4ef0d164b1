-- Shop (W3C shop extension): funnel, searches, products, categories, revenue, margin,
-- payment and shipping mix.  The funnel counts the visitors (client IP + user agent per
-- day) who did each step at least once; conversion = step visitors / all visitors,
-- step_conversion = step visitors / previous step visitors.
-- margin = (net unit price - net purchase price) * units.

-- section: funnel
-- (one pass over the shop's rows, each step's counts a FILTER of it)
WITH c AS (
    SELECT [count(DISTINCT visitor),
            count(DISTINCT visitor) FILTER (WHERE method = 'SEARCH'),
            count(DISTINCT visitor) FILTER (WHERE method = 'PROD'),
            count(DISTINCT visitor) FILTER (WHERE method = 'ADDBI'),
            count(DISTINCT visitor) FILTER (WHERE method = 'ORDER')] AS visitors,
           [count(*),
            count(*) FILTER (WHERE method = 'SEARCH'),
            count(*) FILTER (WHERE method = 'PROD'),
            count(*) FILTER (WHERE method = 'ADDBI'),
            count(*) FILTER (WHERE method = 'ORDER')] AS events
    FROM shop_req
), steps AS (
    SELECT s.step, s.stage, c.visitors[s.step] AS visitors, c.events[s.step] AS events
    FROM c, (VALUES (1, 'visitors'), (2, 'searches'), (3, 'product views'), (4, 'add to basket'),
                    (5, 'orders')) s(step, stage)
)
SELECT step, stage, visitors, events,
       round(visitors / nullif(first_value(visitors) OVER (ORDER BY step), 0), 4) AS conversion,
       round(visitors / nullif(lag(visitors) OVER (ORDER BY step), 0), 4) AS step_conversion
FROM steps ORDER BY step;

-- section: revenue
SELECT count(*) AS orders,
       coalesce(sum(total_price), 0) AS revenue,
       (SELECT coalesce(sum(margin), 0) FROM items) AS margin,
       (SELECT coalesce(sum(units), 0) FROM items) AS units,
       CAST(round(avg(total_price), 2) AS DECIMAL(18, 2)) AS average_order,
       count(DISTINCT customer_id) AS customers
FROM ord;

-- section: top_searches
SELECT url_decode(replace(query, '+', ' ')) AS search, count(*) AS searches,
       count(DISTINCT visitor) AS visitors
FROM shop_req WHERE method = 'SEARCH' AND query IS NOT NULL
GROUP BY 1 ORDER BY searches DESC, search LIMIT getvariable('top');

-- section: top_products
WITH views AS (
    SELECT split_part(query, '&', 1) AS product_id,
           any_value(url_decode(replace(split_part(query, '&', 2), '+', ' '))) AS product_name,
           count(*) FILTER (WHERE method = 'PROD') AS views,
           count(*) FILTER (WHERE method = 'ADDBI') AS added_to_basket
    FROM shop_req WHERE method IN ('PROD', 'ADDBI') AND query IS NOT NULL GROUP BY 1
), sold AS (
    SELECT product_id, any_value(product_name) AS product_name, sum(units) AS units,
           sum(revenue) AS revenue, sum(margin) AS margin
    FROM items GROUP BY 1
)
SELECT product_id, coalesce(s.product_name, v.product_name) AS product_name,
       coalesce(v.views, 0) AS views, coalesce(v.added_to_basket, 0) AS added_to_basket,
       coalesce(s.units, 0) AS units, coalesce(s.revenue, 0) AS revenue, coalesce(s.margin, 0) AS margin
FROM views v FULL JOIN sold s USING (product_id)
ORDER BY revenue DESC, views DESC, product_id LIMIT getvariable('top');

-- section: top_categories
SELECT coalesce(category, '-') AS category, sum(units) AS units, sum(revenue) AS revenue, sum(margin) AS margin
FROM items GROUP BY 1 ORDER BY revenue DESC, category LIMIT getvariable('top');

-- section: payment
SELECT payment, count(*) AS orders, sum(total_price) AS revenue,
       round(count(*) / sum(count(*)) OVER (), 4) AS share
FROM ord GROUP BY payment ORDER BY orders DESC, payment;

-- section: shipping
SELECT shipping, count(*) AS orders, sum(total_price) AS revenue,
       round(count(*) / sum(count(*)) OVER (), 4) AS share
FROM ord GROUP BY shipping ORDER BY orders DESC, shipping;
