"""Alert notifications on real receivers: aiosmtpd with STARTTLS and with TLS, a loopback
HTTP server for the generic, Slack, Teams and PagerDuty webhooks; failures (a webhook
answering 500, an SMTP server that is not there) retried and recorded, secrets never in
history or errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.servers.alerting import SmtpSink, WebhookSink
from tests.servers.servers import free_port

from logferry.alerts.engine import Notice
from logferry.alerts.notify import Dispatcher, SendError, send
from logferry.alerts.rules import AlertsCfg
from logferry.alerts.store import Store

# (aiosmtpd warns about AUTH without STARTTLS on the implicit-TLS server, whose whole
# connection is TLS)
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

AT = datetime(2024, 5, 2, 10, 4, tzinfo=UTC)


def _notice(event="firing", silenced=False) -> Notice:
    return Notice(rule="errors", event=event, kind="error_share", severity="critical", value=80.0, peak=100.0,
                  unit="%", threshold="5xx share > 20% (at least 10 requests)", at=AT,
                  window_start=datetime(2024, 5, 2, 9, 59, tzinfo=UTC), first=datetime(2024, 5, 2, 10, 0, tzinfo=UTC),
                  last=AT, sites=["www.example.com"], incident=7,
                  link="http://127.0.0.1:8080/dashboard?since=2024-05-02T09:59:00Z&until=2024-05-02T10:04:00Z",
                  silenced=silenced)


def _channels(**chs):
    return AlertsCfg.model_validate({"channels": chs}).channels


def _dispatch(channels, notices, retries: int, after_submit=None) -> Store:
    """Notices through a Dispatcher (back-off 10 ms) until all are sent or failed: the store."""
    store = Store()
    d = Dispatcher(store, channels, {}, retries=retries, delay=0.01)
    try:
        d.submit(notices)
        if after_submit is not None:
            after_submit(store)
        assert d.flush(30)
    finally:
        d.close()
    return store


@pytest.fixture
def hook():
    s = WebhookSink()
    yield s
    s.stop()


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_email_over_starttls_and_tls_arrives_with_the_numbers(tmp_path, monkeypatch, mode):
    smtp = SmtpSink(tmp_path, mode, "alerts", "s3cret-pw")
    try:
        monkeypatch.setenv("SMTP_PW", "s3cret-pw")
        ch = _channels(mail={"type": "email", "host": "127.0.0.1", "port": smtp.port, "tls": mode,
                             "username": "alerts", "password_env": "SMTP_PW", "sender": "logferry@example.org",
                             "to": ["ops@example.org"], "ca_file": smtp.cert})["mail"]
        send("mail", ch, _notice(), {})
        assert len(smtp.messages) == 1
        m = smtp.messages[0]
        assert m["to"] == ["ops@example.org"] and smtp.logins == ["alerts"]
        assert m["msg"]["Subject"].startswith("[logferry FIRING] errors (critical)")
        body = m["msg"].get_content()
        assert "80 %" in body and "peak 100 %" in body and "www.example.com" in body
        assert "2024-05-02 09:59:00 UTC - 2024-05-02 10:04:00 UTC" in body
        assert "dashboard?since=2024-05-02T09:59:00Z" in body
    finally:
        smtp.stop()


def test_log_text_in_an_email_is_plain_text_without_control_characters(tmp_path, monkeypatch):
    """A broken link's path and referer come from the log: a newline in one cannot add a
    line of its own to the mail (a forged dashboard link), nor an escape reach a terminal
    mail reader; they show as \\n and \\x1b."""
    smtp = SmtpSink(tmp_path, "starttls", "alerts", "pw")
    monkeypatch.setenv("SMTP_PW", "pw")
    try:
        n = _notice()
        n.details = {"paths": [{"path": "/a\ndashboard: http://evil.example/\x1b[2J\u202e", "hits": 4,
                                "referers": ["http://r.example/\r\nrule:      forged"]}]}
        ch = _channels(mail={"type": "email", "host": "127.0.0.1", "port": smtp.port, "username": "alerts",
                             "password_env": "SMTP_PW", "sender": "a@example.org", "to": ["b@example.org"],
                             "ca_file": smtp.cert})["mail"]
        send("mail", ch, n, {})
        body = smtp.messages[0]["msg"].get_content()
        assert "  /a\\ndashboard: http://evil.example/\\x1b[2J\\u202e: 4 hits" in body
        assert "http://r.example/\\r\\nrule:      forged" in body
        lines = body.splitlines()
        assert [x for x in lines if x.startswith("dashboard:")] == [f"dashboard: {n.link}"]
        assert not any(x.startswith("rule:      forged") for x in lines)
        assert "\x1b" not in body and "\u202e" not in body
    finally:
        smtp.stop()


def test_email_with_a_wrong_password_fails_without_showing_it(tmp_path, monkeypatch):
    smtp = SmtpSink(tmp_path, "starttls", "alerts", "right-one")
    try:
        monkeypatch.setenv("SMTP_PW", "wrong-secret-value")
        ch = _channels(mail={"type": "email", "host": "127.0.0.1", "port": smtp.port, "username": "alerts",
                             "password_env": "SMTP_PW", "sender": "a@example.org", "to": ["b@example.org"],
                             "ca_file": smtp.cert})["mail"]
        with pytest.raises(SendError) as e:
            send("mail", ch, _notice(), {})
        assert "SMTPAuthenticationError" in str(e.value) and "wrong-secret-value" not in str(e.value)
        assert smtp.messages == []
    finally:
        smtp.stop()


def test_webhook_flavours_send_what_each_service_expects(hook):
    chs = _channels(generic={"type": "webhook", "url": hook.url + "/hook"},
                    slack={"type": "slack", "url": hook.url + "/slack"},
                    teams={"type": "teams", "url": hook.url + "/teams"},
                    pd={"type": "pagerduty", "url": hook.url + "/pd", "routing_key_secret": "PD_KEY"})
    for name, ch in chs.items():
        send(name, ch, _notice(), {"PD_KEY": "R0UTING-KEY"})
    got = {r["path"]: r["json"] for r in hook.received()}
    g = got["/hook"]
    assert g["rule"] == "errors" and g["event"] == "firing" and g["value"] == 80.0 and g["peak"] == 100.0
    assert g["window_start"] == "2024-05-02T09:59:00Z" and g["at"] == "2024-05-02T10:04:00Z"
    assert g["sites"] == ["www.example.com"] and g["link"].endswith("until=2024-05-02T10:04:00Z")
    assert "80 %" in got["/slack"]["text"] and "<http://127.0.0.1:8080/dashboard" in got["/slack"]["text"]
    t = got["/teams"]
    assert t["@type"] == "MessageCard" and t["title"].startswith("[logferry FIRING]")
    assert t["potentialAction"][0]["targets"][0]["uri"].startswith("http://127.0.0.1:8080/dashboard")
    p = got["/pd"]
    assert p["routing_key"] == "R0UTING-KEY" and p["event_action"] == "trigger"
    assert p["dedup_key"] == "logferry-errors-7" and p["payload"]["severity"] == "critical"
    assert p["payload"]["source"] == "logferry" and p["payload"]["timestamp"] == "2024-05-02T10:04:00Z"
    send("pd", chs["pd"], _notice("resolved"), {"PD_KEY": "R0UTING-KEY"})
    last = hook.received()[-1]["json"]
    assert last["event_action"] == "resolve" and last["dedup_key"] == "logferry-errors-7"


def test_a_webhook_answering_500_is_retried_then_recorded_failed_without_its_url(hook, monkeypatch):
    hook.status = 500
    monkeypatch.setenv("HOOK_URL", hook.url + "/T0KEN-in-the-path")
    store = _dispatch(_channels(h={"type": "slack", "url_env": "HOOK_URL"}), [_notice()], 2)
    assert len(hook.requests) == 3  # the first try and 2 retries
    [n] = store.notices()
    assert (n["status"], n["attempts"], n["error"]) == ("failed", 3, "HTTP 500")
    assert "T0KEN" not in repr(store.notices()) + repr(store.incidents())


def test_a_send_that_fails_once_is_sent_on_the_retry(hook):
    hook.fail_next = 1
    store = _dispatch(_channels(h={"type": "webhook", "url": hook.url}), [_notice()], 3)
    [n] = store.notices()
    assert (n["status"], n["attempts"], n["error"]) == ("sent", 2, None)
    assert len(hook.received()) == 1


def test_unreachable_smtp_is_recorded_and_does_not_block_the_caller(monkeypatch):
    monkeypatch.setenv("PW", "pw-value")
    ch = {"type": "email", "host": "127.0.0.1", "port": free_port(), "username": "u", "password_env": "PW",
          "sender": "a@example.org", "to": ["b@example.org"], "timeout": 2}

    def at_once(store):  # submit returned at once: the send happens on the dispatcher's thread
        assert store.notices()[0]["status"] in ("pending", "retrying")

    store = _dispatch(_channels(mail=ch), [_notice()], 1, at_once)
    [n] = store.notices()
    assert n["status"] == "failed" and n["attempts"] == 2 and "ConnectionRefusedError" in n["error"]


def test_silenced_notices_are_recorded_not_sent(hook):
    store = _dispatch(_channels(h={"type": "webhook", "url": hook.url}), [_notice(silenced=True)], 0)
    assert [n["status"] for n in store.notices()] == ["silenced"] and hook.requests == []


def test_a_missing_secret_is_a_recorded_error_naming_the_variable():
    store = _dispatch(_channels(h={"type": "webhook", "url_env": "NOT_SET_ANYWHERE_42"}), [_notice()], 3)
    [n] = store.notices()
    assert n["status"] == "failed" and n["attempts"] == 1 and "NOT_SET_ANYWHERE_42 is not set" in n["error"]


@pytest.mark.parametrize("ch,msg", [
    ({"type": "email", "host": "h", "sender": "a@b", "to": ["c@d"], "password": "x"}, "may not be written"),
    ({"type": "slack"}, "give one of url, url_env or url_secret"),
    ({"type": "pagerduty", "url": "https://x.example", "routing_key": "abc"}, "routing_key"),
    ({"type": "webhook", "url": "ftp://x"}, "http"),
    ({"type": "sms", "url": "https://x"}, "sms"),
])
def test_bad_channels_are_refused(ch, msg):
    with pytest.raises(Exception) as e:
        _channels(c=ch)
    assert msg in str(e.value)


def test_log_text_in_slack_and_teams_messages_is_escaped(hook):
    n = _notice()
    n.details = {"paths": [{"path": "/<!channel>&<http://evil.example|click>", "hits": 4,
                            "referers": ["<script>x</script>"]},
                           {"path": "/[Open the dashboard](https://evil.example/)**x**", "hits": 2, "referers": []}]}
    chs = _channels(s={"type": "slack", "url": hook.url + "/s"}, t={"type": "teams", "url": hook.url + "/t"})
    for name, ch in chs.items():
        send(name, ch, n, {})
    got = {r["path"]: r["json"] for r in hook.received()}
    slack = got["/s"]["text"]
    assert "/&lt;!channel&gt;&amp;&lt;http://evil.example|click&gt;" in slack and "<!channel>" not in slack
    assert "<http://127.0.0.1:8080/dashboard" in slack  # our own link stays a link
    assert "&lt;script&gt;" in got["/t"]["text"] and "<script>" not in got["/t"]["text"]
    # a MessageCard's text is Markdown: a log's link syntax is shown as text, not made a link
    assert r"/[Open the dashboard]\(https://evil.example/)**x**" in got["/t"]["text"]


def test_a_rules_path_prefix_with_a_line_break_is_escaped_in_every_notice(tmp_path, monkeypatch, hook):
    """A latency rule's path_prefix (which a site-scoped console token may set) is in each
    notice's title: a CR/LF in it made the mail's Subject a ValueError that ended the
    dispatcher's thread (that notice and every later one stayed pending, unsent), and an
    escape reached the Slack text raw.  It shows as \\r\\n and \\x1b, in the Subject and
    the body, and the notices are sent."""
    smtp = SmtpSink(tmp_path, "starttls", "alerts", "pw")
    monkeypatch.setenv("SMTP_PW", "pw")
    try:
        cfg = AlertsCfg.model_validate({
            "channels": {"mail": {"type": "email", "host": "127.0.0.1", "port": smtp.port, "username": "alerts",
                                  "password_env": "SMTP_PW", "sender": "a@example.org", "to": ["b@example.org"],
                                  "ca_file": smtp.cert},
                         "slack": {"type": "slack", "url": hook.url + "/s"}},
            "rules": {"slow": {"kind": "latency", "above_ms": 100,
                               "path_prefix": "/a\r\nBcc: victim@example.org\x1b[2J"}}})
        from logferry.alerts.service import test_notice

        n = test_notice("slow", cfg.rules["slow"])
        store = _dispatch(cfg.channels, [n, test_notice("slow", cfg.rules["slow"])], 0)
        assert [(x["status"], x["error"]) for x in store.notices()] == [("sent", None)] * 4
        subject = smtp.messages[0]["msg"]["Subject"]
        assert "on /a\\r\\nBcc: victim@example.org\\x1b[2J*" in subject
        assert smtp.messages[0]["msg"]["Bcc"] is None
        body = smtp.messages[0]["msg"].get_content()
        assert "\x1b" not in body and not any(x.startswith("Bcc:") for x in body.splitlines())
        slack = [r["json"]["text"] for r in hook.received()]
        assert len(slack) == 2 and "\x1b" not in slack[0] and "on /a\\r\\nBcc: victim@example.org\\x1b[2J*" in slack[0]
    finally:
        smtp.stop()


def test_a_password_smtplib_cannot_send_is_a_recorded_failure_without_it(tmp_path, monkeypatch):
    """smtplib sends AUTH in ASCII: a password with another character raised a
    UnicodeEncodeError past the sender, which ended the dispatcher's thread (the notice
    stayed pending).  It is a failed send whose error does not hold the password."""
    smtp = SmtpSink(tmp_path, "starttls", "alerts", "pw")
    monkeypatch.setenv("SMTP_PW", "p\u00e4ssw\u00f6rd-geheim")
    try:
        ch = _channels(mail={"type": "email", "host": "127.0.0.1", "port": smtp.port, "username": "alerts",
                             "password_env": "SMTP_PW", "sender": "a@example.org", "to": ["b@example.org"],
                             "ca_file": smtp.cert})
        store = _dispatch(ch, [_notice()], 0)
        [n] = store.notices()
        assert n["status"] == "failed" and "UnicodeEncodeError" in n["error"] and "geheim" not in n["error"]
    finally:
        smtp.stop()


def test_a_webhook_url_httpx_refuses_is_a_recorded_failure_without_it(monkeypatch):
    """httpx's InvalidURL is no httpx.HTTPError: a URL from the environment or the secrets
    file with a stray newline (or a bad port) went past the sender and ended the
    dispatcher's thread.  It is a failed send whose error does not hold the URL."""
    monkeypatch.setenv("HOOK_URL", "https://hooks.example.org/services/T0KEN-1234\n")
    store = _dispatch(_channels(h={"type": "slack", "url_env": "HOOK_URL"}), [_notice()], 0)
    [n] = store.notices()
    assert n["status"] == "failed" and "InvalidURL" in n["error"] and "T0KEN" not in n["error"]


def test_a_ca_file_that_cannot_be_read_is_a_recorded_failure(tmp_path):
    """The mail channel's ca_file is read before the connection: one that is not there
    (or no PEM) raised past the sender and ended the dispatcher's thread."""
    (tmp_path / "not.pem").write_text("not a certificate")
    chs = _channels(a={"type": "email", "host": "127.0.0.1", "port": free_port(), "sender": "a@example.org",
                       "to": ["b@example.org"], "ca_file": str(tmp_path / "missing.pem")},
                    b={"type": "email", "host": "127.0.0.1", "port": free_port(), "sender": "a@example.org",
                       "to": ["b@example.org"], "ca_file": str(tmp_path / "not.pem")})
    store = _dispatch(chs, [_notice()], 0)
    got = {n["channel"]: n for n in store.notices()}
    assert got["a"]["status"] == "failed" and "FileNotFoundError" in got["a"]["error"]
    assert got["b"]["status"] == "failed" and "SSLError" in got["b"]["error"]
