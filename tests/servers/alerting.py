"""Real receivers on 127.0.0.1 for the alert notification tests: an HTTP server that
records every request (webhooks) and an aiosmtpd SMTP server with STARTTLS or TLS and
login that keeps every message it accepts."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .servers import _self_signed, free_port, wait_port


class WebhookSink:
    """POSTs recorded as ``{"path", "headers", "json"}``; answers ``status`` (200, or
    e.g. 500 to test failures; ``fail_next`` answers 500 that many times first)."""

    def __init__(self, status: int = 200):
        self.requests: list[dict] = []
        self.status, self.fail_next = status, 0
        self.lock = threading.Lock()
        sink = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink.lock:
                    code = sink.status
                    if sink.fail_next > 0:
                        sink.fail_next, code = sink.fail_next - 1, 500
                    sink.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "json": json.loads(body) if body else None, "answered": code})
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        wait_port(self.port)

    def received(self) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if 200 <= r["answered"] < 300]

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class SmtpSink:
    """aiosmtpd on 127.0.0.1: ``mode`` "starttls" (TLS required before AUTH) or "tls"
    (implicit TLS); AUTH LOGIN/PLAIN with ``user``/``password``; ``messages`` holds what
    arrived (envelope from, recipients, the parsed message)."""

    def __init__(self, tmp, mode: str, user: str, password: str):
        from email import message_from_bytes, policy

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.cert = str(tmp / "smtp.pem")
        _self_signed(self.cert)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert)
        self.messages: list[dict] = []
        self.logins: list[str] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                      "msg": message_from_bytes(envelope.content, policy=policy.default)})
                return "250 OK"

        def auth(server, session, envelope, mechanism, data):
            ok = data.login.decode() == user and data.password.decode() == password
            if ok:
                sink.logins.append(data.login.decode())
            return AuthResult(success=ok, handled=False)

        self.port = free_port()
        kw = dict(hostname="127.0.0.1", port=self.port, authenticator=auth, auth_required=True)
        if mode == "tls":  # (the whole connection is TLS: aiosmtpd's STARTTLS check does not apply)
            self.ctl = Controller(Handler(), ssl_context=ctx, auth_require_tls=False, **kw)
        else:
            self.ctl = Controller(Handler(), tls_context=ctx, require_starttls=True, **kw)
        self.ctl.start()

    def stop(self):
        self.ctl.stop()
