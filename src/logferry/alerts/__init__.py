"""Alert rules on the usage database, evaluated live and on a schedule, with notifications.

``rules`` (the ``[alerts]`` table of logferry.toml), ``query`` (one query per rule),
``engine`` (state machine, incidents, :func:`evaluate` and :func:`replay` with the clock
injected), ``store`` (state in SQLite), ``notify`` (email and webhooks, sent on a thread
with retries), ``runner`` (the scheduler of run / serve), ``cli`` and ``web`` (the
``alerts`` commands and the console's Alerts page).  See docs/alerts.md.
"""
