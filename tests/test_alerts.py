"""Alert rules replayed over logs with known incidents: each rule fires once at the right
minute, repeats as set, resolves once, is silenced when silenced; nothing fires on the
clean stretches.  The logs are IIS W3C files ingested into a real usage database.

Two days, 2024-05-01 (clean: yesterday for the traffic rule) and 2024-05-02, one request
every 10 s on www.example.com and one every 10 s (at +5 s) on shop.example.com.  On the
second day, on www: every request 503 from 10:00 to 10:15, 3 s responses from 11:00 to
11:15, nothing from 12:00 to 12:30, /gone answering 404 every 30 s from 13:00 to 13:20
(from https://ref.example/page); on shop: only one request in four from 14:00 to 16:00.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from logferry.alerts.engine import evaluate, replay, to_us
from logferry.alerts.rules import AlertsCfg
from logferry.alerts.store import Store

DAY1 = datetime(2024, 5, 1, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
END = DAY2 + timedelta(hours=18)
WWW, SHOP = "www.example.com", "shop.example.com"


def _at(h: int, m: int) -> datetime:
    return DAY2 + timedelta(hours=h, minutes=m)


def _lines():
    t = DAY1
    while t < END:
        day2 = t >= DAY2
        hm = (t - DAY2) if day2 else None
        status, dur, path = 200, 50, "/page"
        if day2 and timedelta(hours=10) <= hm < timedelta(hours=10, minutes=15):
            status = 503
        if day2 and timedelta(hours=11) <= hm < timedelta(hours=11, minutes=15):
            dur = 3000
        gap = day2 and timedelta(hours=12) <= hm < timedelta(hours=12, minutes=30)
        if not gap:
            yield t, WWW, path, status, dur, "-"
        if day2 and timedelta(hours=13) <= hm < timedelta(hours=13, minutes=20) and t.second % 30 == 0:
            yield t, WWW, "/gone", 404, 20, "https://ref.example/page"
        drop = day2 and timedelta(hours=14) <= hm < timedelta(hours=16)
        if not drop or (int(t.timestamp()) // 10) % 4 == 0:
            yield t + timedelta(seconds=5), SHOP, "/shop", 200, 40, "-"
        t += timedelta(seconds=10)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    from logferry.usage import connect, ingest

    d = tmp_path_factory.mktemp("alerts")
    log = d / "u_ex240501.log"
    with open(log, "w") as f:
        f.write("#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"
                "#Fields: date time s-sitename cs-method cs-uri-stem cs-uri-query c-ip cs(Referer) cs-host "
                "sc-status sc-bytes time-taken\n")
        for t, host, path, status, dur, ref in _lines():
            f.write(f"{t:%Y-%m-%d %H:%M:%S} W3SVC1 GET {path} - 192.0.2.7 {ref} {host} {status} 512 {dur}\n")
    path = d / "usage.duckdb"
    con = connect(path)
    s = ingest(con, [str(log)])
    assert s.records > 20000 and s.bad_rows == 0
    con.close()
    con = connect(path, read_only=True)
    yield con
    con.close()


RULES = {
    "errors": {"kind": "error_share", "class": "5xx", "above_pct": 20, "window": "5m", "min_requests": 10,
               "for": "2m", "repeat": "10m", "sites": [WWW], "severity": "critical"},
    "slow": {"kind": "latency", "percentile": "p95", "above_ms": 1000, "window": "5m", "sites": [WWW]},
    "down": {"kind": "site_down", "window": "10m", "sites": [WWW]},
    "broken": {"kind": "broken_links", "min_hits": 3, "window": "15m", "baseline": "1d", "sites": [WWW]},
    "drop": {"kind": "traffic", "below": 0.5, "window": "30m", "compare": "yesterday", "min_requests": 50,
             "sites": [SHOP]},
}

#: rule -> (events with their minute of day 2)
EXPECTED = {
    "errors": [("firing", (10, 4)), ("repeat", (10, 14)), ("resolved", (10, 19))],
    "slow": [("firing", (11, 1)), ("resolved", (11, 20))],
    "down": [("firing", (12, 10)), ("resolved", (12, 31))],
    "broken": [("firing", (13, 2)), ("resolved", (13, 16))],
    "drop": [("firing", (14, 21)), ("repeat", (15, 21)), ("resolved", (16, 10))],  # repeat: 1h default
}


def _rules(**over):
    return AlertsCfg.model_validate({"rules": {**RULES, **over}}).rules


def _events(notices, rule):
    return [(n.event, (n.at.hour, n.at.minute)) for n in notices if n.rule == rule]


def test_each_rule_fires_once_repeats_and_resolves_on_the_replay(db):
    store = Store()
    notices = replay(_rules(), db, to_us(DAY2), to_us(END), 60, store)
    for rule, want in EXPECTED.items():
        assert _events(notices, rule) == want, rule
    incidents = {i["rule"]: i for i in store.incidents()}
    assert len(store.incidents()) == 5
    e = incidents["errors"]
    assert e["started"] == to_us(_at(10, 2)) and e["resolved"] == to_us(_at(10, 19))
    assert e["first"] == to_us(_at(10, 0)) and e["last"] == to_us(_at(10, 14) + timedelta(seconds=50))
    assert e["peak"] == 100.0
    assert incidents["down"]["peak"] == pytest.approx(30.2)  # minutes since the last request
    assert incidents["drop"]["peak"] < 0.3
    fired = next(n for n in notices if n.rule == "broken")
    assert fired.details["paths"] == [{"path": "/gone", "hits": 4, "referers": ["https://ref.example/page"]}]
    assert "/gone: 4 hits (from https://ref.example/page)" in fired.text()
    # the incident keeps the last window it held in: 13:00-13:15, 30 hits
    assert incidents["broken"]["details"]["paths"][0]["hits"] == 30


def test_nothing_fires_on_the_clean_day(db):
    store = Store()
    assert replay(_rules(), db, to_us(DAY1), to_us(DAY2), 60, store) == []
    assert store.incidents() == []


def test_live_evaluation_steps_the_injected_clock_like_the_replay(db):
    """evaluate(now) minute by minute gives the replay's notices (the same state machine)."""
    store = Store()
    rules = {"errors": _rules()["errors"]}
    got = []
    t = _at(9, 50)
    while t <= _at(10, 30):
        got += evaluate(rules, db, t, store)
        t += timedelta(minutes=1)
    assert _events(got, "errors") == EXPECTED["errors"]
    n = got[0]
    assert n.value == pytest.approx(80.0)  # 24 of the window's 30 and n.sites == [WWW] and n.incident is not None
    assert n.window_start == _at(9, 59) and n.at == _at(10, 4)
    assert "since=2024-03" not in n.link and "site=www.example.com" in n.link


def test_a_silenced_rule_records_its_incident_but_not_as_sent(db):
    store = Store()
    store.silence("errors", None, to_us(_at(10, 10)), to_us(_at(9, 0)))
    notices = replay(_rules(), db, to_us(_at(9, 30)), to_us(_at(10, 30)), 60, store)
    errs = [(n.event, n.silenced) for n in notices if n.rule == "errors"]
    assert errs == [("firing", True), ("repeat", False), ("resolved", False)]
    assert len(store.incidents("errors")) == 1


def test_a_site_silence_covers_the_rules_of_that_site_only(db):
    store = Store()
    store.silence(None, WWW, to_us(END), to_us(DAY2))
    notices = replay(_rules(), db, to_us(DAY2), to_us(END), 60, store)
    assert {n.rule for n in notices if n.silenced} == {"errors", "slow", "down", "broken"}
    assert all(not n.silenced for n in notices if n.rule == "drop")


def test_repeat_zero_sends_one_notice_and_no_resolved_when_off(db):
    store = Store()
    rules = _rules(errors={**RULES["errors"], "repeat": 0, "resolved": False})
    notices = replay({"errors": rules["errors"]}, db, to_us(_at(9, 30)), to_us(_at(10, 30)), 60, store)
    assert _events(notices, "errors") == [("firing", (10, 4))]
    assert store.incidents("errors")[0]["resolved"] == to_us(_at(10, 19))  # closed all the same


def test_state_survives_a_restart(db, tmp_path):
    """The state is in the file: a new Store on it goes on where the last one stopped."""
    rules = {"errors": _rules()["errors"]}
    s1 = Store(tmp_path / "a.sqlite")
    got = [n for m in range(0, 6) for n in evaluate(rules, db, _at(10, m), s1)]
    s1.close()
    s2 = Store(tmp_path / "a.sqlite")
    got += [n for m in range(6, 21) for n in evaluate(rules, db, _at(10, m), s2)]
    assert _events(got, "errors") == EXPECTED["errors"]


def test_a_rule_matching_the_site_column_only_is_not_set_off_by_a_host_header(db):
    """Every line's site column is W3SVC1; www and shop are only Host headers, which
    clients choose: a rule of match = "site" for www sees none of them."""
    err, q = RULES["errors"], {"kind": "sql", "window": "5m", "query": "SELECT count(*) AS n FROM requests "
                               "WHERE status = 503 HAVING count(*) >= 30", "sites": [WWW]}
    rules = _rules(www_site={**err, "match": "site"}, w3svc={**err, "match": "site", "sites": ["W3SVC1"]},
                   q_host=q, q_site={**q, "match": "site"})
    notices = replay(rules, db, to_us(_at(9, 0)), to_us(_at(11, 0)), 60, Store())
    assert _events(notices, "errors")[0] == ("firing", (10, 4))  # (by its Host header, the default)
    assert _events(notices, "www_site") == [] and _events(notices, "q_site") == []
    assert _events(notices, "w3svc")[0][0] == "firing" and _events(notices, "q_host")[0][0] == "firing"


def test_path_prefix_and_sql_rules(db):
    rules = _rules(
        slow_api={"kind": "latency", "percentile": "p50", "above_ms": 1000, "window": "5m",
                  "path_prefix": "/api"},
        q={"kind": "sql", "window": "5m", "query": "SELECT count(*) AS n FROM requests WHERE status = 503 "
           "AND \"timestamp\" >= $start HAVING count(*) >= 30"},
    )
    notices = replay({k: rules[k] for k in ("slow_api", "q")}, db, to_us(_at(9, 0)), to_us(_at(11, 30)), 60,
                     Store())
    assert _events(notices, "slow_api") == []  # no /api path
    assert _events(notices, "q") == [("firing", (10, 5)), ("resolved", (10, 16))]
    assert notices[0].details == {"rows": [{"n": 30}]}
