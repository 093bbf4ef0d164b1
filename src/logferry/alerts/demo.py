"""The demo's example alert rules (``logferry demo`` writes them into its logferry.toml)."""

from __future__ import annotations

#: name -> rule, as written in the file
DEMO_RULES: dict[str, dict] = {
    "server-errors": {"kind": "error_share", "class": "5xx", "above_pct": 20, "window": "5m",
                      "min_requests": 10, "for": "2m", "repeat": "1h", "severity": "critical",
                      "description": "More than a fifth of the requests answered 5xx"},
    "site-down": {"kind": "site_down", "window": "10m", "severity": "critical",
                  "description": "No request at all for ten minutes"},
    "slow-pages": {"kind": "latency", "percentile": "p95", "above_ms": 700, "window": "15m",
                   "min_requests": 50, "for": "5m", "severity": "warning",
                   "description": "The 95th percentile of response times above 700 ms"},
    "new-broken-links": {"kind": "broken_links", "min_hits": 3, "window": "1h", "severity": "info",
                         "description": "A path answering 404/410 that did not before"},
}


def add_demo_rules(doc, db: str) -> None:
    """Add an ``[alerts]`` table with :data:`DEMO_RULES` to the tomlkit document ``doc``."""
    import tomlkit

    alerts = tomlkit.table()
    alerts.add(tomlkit.comment("alert rules; `logferry alerts test --all --config THIS` replays them on the demo's logs"))
    alerts.add("db", db)
    rules = tomlkit.table(is_super_table=True)
    for name, r in DEMO_RULES.items():
        t = tomlkit.table()
        for k, v in r.items():
            t.add(k, v)
        rules.add(name, t)
    alerts.add("rules", rules)
    doc.add("alerts", alerts)
