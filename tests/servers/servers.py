"""Real servers on 127.0.0.1 for the destination tests: moto (S3), gcp-storage-emulator
(GCS), OpenSSH sshd (SFTP), pyftpdlib with explicit TLS (FTPS) and a Datadog logs intake
that validates requests against the documented v2 API."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port: int, timeout: float = 15) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def until(fn, timeout: float = 90, every: float = 0.1):
    """``fn()``'s first true value, asked every ``every`` s for at most ``timeout`` s."""
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise AssertionError("condition never met")


# ------------------------------------------------------------ logferry as a child process
class Child:
    """``logferry ARGS`` as a child process (``ingest --follow``, ``report --follow``,
    ``serve --follow``...), the lines of its stderr (or ``out``: its stdout) collected on a
    thread.  Used in a ``with`` block, it is never left behind: on leaving the block it is
    stopped (SIGTERM, SIGKILL after a few seconds).  Its faulthandler is on: a child that
    does not end in time is made to print every thread's stack (SIGABRT) for the report."""

    def __init__(self, *args: str, stdin=None, out: bool = False, env: dict | None = None, cwd=None):
        env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
        self.p = subprocess.Popen([sys.executable, "-c", "from logferry.cli import main; main()", *args],
                                  stdin=stdin, stdout=subprocess.PIPE if out else None,
                                  stderr=subprocess.STDOUT if out else subprocess.PIPE, env=env, cwd=cwd)
        self.lines: list[bytes] = []
        stream = self.p.stdout if out else self.p.stderr
        self.t = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, b"")), daemon=True)
        self.t.start()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def saw(self, text: str) -> bool:
        return any(text.encode() in x for x in list(self.lines))

    @property
    def text(self) -> str:
        return b"".join(list(self.lines)).decode(errors="replace")

    def stop(self, sig: int | None = None, timeout: float = 20) -> int:
        """Send ``sig`` (SIGTERM by default) and :meth:`wait`."""
        import signal

        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM if sig is None else sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 20) -> int:
        """The exit status, once the child ended (at most ``timeout`` s: a hang fails the
        test with the child's stacks) and the rest of its output was read."""
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._abort()
            raise AssertionError(f"still running after {timeout:g} s:\n{self.text}") from None
        self.t.join(10)
        return rc

    def close(self) -> None:
        """End it now if it still runs: SIGTERM; one still there 5 s later is taken for
        hung (:meth:`_abort`)."""
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._abort()
                print(f"logferry {' '.join(self.p.args[3:])} did not end on SIGTERM:\n{self.text}",
                      file=sys.stderr)
        if self.p.stdin is not None and not self.p.stdin.closed:
            try:
                self.p.stdin.close()
            except OSError:  # (a broken pipe: the child is gone)
                pass

    def _abort(self) -> None:
        """SIGABRT: its faulthandler prints every thread's stack, then it dies (SIGKILL if
        even that does not end it)."""
        import signal

        self.p.send_signal(signal.SIGABRT)
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.t.join(10)


# ----------------------------------------------------------------------- logferry serve
def browser_login(page, url: str) -> None:
    """Log a Chromium page in with a printed login URL: it opens the login form (a GET
    logs nobody in); Log in posts it."""
    page.goto(url)
    with page.expect_navigation():
        page.click("#login")


class Serve:
    """``logferry serve ARGS`` as its own process on a free port of 127.0.0.1: ``proc``,
    ``login`` (the login URL it prints first), ``base`` (the app's URL)."""

    def __init__(self, cwd, *args: str, env: dict | None = None):
        import re
        import sys

        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "logferry.cli", "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
            env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"})
        try:
            first = self.proc.stdout.readline()
            m = re.search(r"(http://127\.0\.0\.1:\d+/login\?token=\S+)", first)
            assert m, first
            self.login, self.base = m.group(1), f"http://127.0.0.1:{self.port}"
            wait_port(self.port)
        except BaseException:  # (never left behind)
            self.proc.kill()
            self.proc.wait()
            raise

    def stop(self, timeout: float = 60) -> tuple[int, str]:
        """SIGTERM, then the exit status and the rest of the output (killed after
        ``timeout`` s: status -9)."""
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        elif self.proc.stdout.closed:  # a test already stopped it and read its output
            return self.proc.returncode, ""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return self.proc.returncode, out


# ----------------------------------------------------------------------------- S3
class S3Server:
    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.srv = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.srv.start()
        wait_port(self.port)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # (moto keeps its buckets in the process, not the server: a server started after
        # another in the same test process saw the objects the earlier test left)
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"),
                               timeout=30).close()
        _forget_s3_clients()

    def env(self) -> dict[str, str]:
        """The AWS environment that points logferry (s3fs, pyiceberg, boto3) at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}

    def make_bucket(self, name: str) -> None:
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                     aws_access_key_id="test", aws_secret_access_key="test").create_bucket(Bucket=name)

    def stop(self):
        self.srv.stop()
        _forget_s3_clients()


def _forget_s3_clients() -> None:
    """fsspec keeps one S3FileSystem per set of arguments for the process, with the client
    (endpoint, credentials) it made first: a later test's server and environment were not
    seen (a test after test_cluster's S3 one failed with NoCredentialsError)."""
    if "s3fs" in sys.modules:
        sys.modules["s3fs"].S3FileSystem.clear_instance_cache()


# ---------------------------------------------------------------------------- GCS
class GCSServer:
    def __init__(self):
        from gcp_storage_emulator.server import create_server

        self.port = free_port()
        self.srv = create_server("127.0.0.1", self.port, in_memory=True, default_bucket="logs")
        self.srv.start()
        wait_port(self.port)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.srv.stop()


# --------------------------------------------------------------------------- SFTP
class SSHServer:
    def __init__(self, tmp):
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not os.path.exists(sshd):
            pytest.skip("OpenSSH sshd is not installed (apt-get install openssh-server)")
        self.dir = tmp
        hk = os.path.join(tmp, "host_ed25519")
        uk = os.path.join(tmp, "user_ed25519")
        for k in (hk, uk):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k], check=True)
        auth = os.path.join(tmp, "authorized_keys")
        shutil.copy(uk + ".pub", auth)
        os.chmod(auth, 0o600)
        self.port = free_port()
        self.user = os.environ.get("USER") or __import__("getpass").getuser()
        cfg = os.path.join(tmp, "sshd_config")
        with open(cfg, "w") as f:
            f.write(
                f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {hk}\n"
                f"AuthorizedKeysFile {auth}\nPidFile {tmp}/sshd.pid\nUsePAM no\nStrictModes no\n"
                f"PasswordAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin yes\n"
                f"Subsystem sftp internal-sftp\nLogLevel ERROR\n"
            )
        os.makedirs("/run/sshd", exist_ok=True)
        self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", cfg], stderr=subprocess.PIPE)
        wait_port(self.port)
        self.known_hosts = os.path.join(tmp, "known_hosts")
        pub = open(hk + ".pub").read().split()
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")
        self.key = uk
        self.root = os.path.join(tmp, "upload")
        os.makedirs(self.root)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


# --------------------------------------------------------------------------- FTPS
class FTPSServer:
    def __init__(self, tmp):
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import TLS_FTPHandler
        from pyftpdlib.servers import ThreadedFTPServer

        self.root = os.path.join(tmp, "ftproot")
        os.makedirs(self.root)
        self.cert = os.path.join(tmp, "cert.pem")
        _self_signed(self.cert)
        self.user, self.password = "shipper", "s3cret-ftp"
        auth = DummyAuthorizer()
        auth.add_user(self.user, self.password, self.root, perm="elradfmwMT")

        class H(TLS_FTPHandler):
            pass

        H.certfile = self.cert
        H.authorizer = auth
        H.tls_control_required = True
        H.tls_data_required = True
        H.passive_ports = None
        self.port = free_port()
        self.srv = ThreadedFTPServer(("127.0.0.1", self.port), H)
        self.t = threading.Thread(target=self.srv.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
        self.t.start()
        wait_port(self.port)

    def stop(self):
        self.srv.close_all()


def _self_signed(path: str) -> None:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


# ------------------------------------------------------------------------ Datadog
class DatadogIntake:
    """POST /api/v2/logs per the documented API: DD-API-KEY required (401 without,
    403 wrong), JSON array body (gzip or identity), <= 5 MB uncompressed (413), <= 1000
    entries (413), every entry an object with a string ``message``; answers 202.  And
    GET /api/v1/validate (the API key check): 200 ``{"valid": true}``, or 403."""

    def __init__(self, api_key: str):
        self.api_key = api_key
        self.items: list[dict] = []
        self.requests: list[dict] = []
        self.violations: list[str] = []
        self.fail_next = 0  # answer 503 to this many requests (outage)
        self.fail_body = b"{}"  # ... with this body
        self.validations = 0  # GET /api/v1/validate answered valid
        self.echo = False  # a refusal's body repeats the key it was sent (as a debugging proxy does)
        self.lock = threading.Lock()
        intake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self, code, body=b"{}"):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                # GET /api/v1/validate: {"valid": true} for the key, 403 otherwise
                if self.path.split("?")[0] != "/api/v1/validate":
                    return self._answer(404)
                if self.headers.get("DD-API-KEY") != intake.api_key:
                    return self._answer(403, intake.refusal(self.headers))
                with intake.lock:
                    intake.validations += 1
                self._answer(200, b'{"valid":true}')

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(n)
                with intake.lock:
                    if intake.fail_next > 0:
                        intake.fail_next -= 1
                        return self._answer(503, intake.fail_body)
                if self.path.split("?")[0] != "/api/v2/logs":
                    return self._answer(404)
                key = self.headers.get("DD-API-KEY")
                if not key:
                    return self._answer(401)
                if key != intake.api_key:
                    return self._answer(403, intake.refusal(self.headers))
                if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                    intake.violations.append("content-type")
                    return self._answer(400)
                enc = self.headers.get("Content-Encoding", "identity")
                try:
                    body = gzip.decompress(raw) if enc == "gzip" else raw
                except OSError:
                    intake.violations.append("bad gzip")
                    return self._answer(400)
                if len(body) > 5_000_000:
                    intake.violations.append(f"body {len(body)} > 5MB")
                    return self._answer(413)
                try:
                    items = json.loads(body)
                except ValueError:
                    intake.violations.append("not JSON")
                    return self._answer(400)
                if not isinstance(items, list) or len(items) > 1000:
                    intake.violations.append("not an array of <= 1000")
                    return self._answer(413 if isinstance(items, list) else 400)
                for it in items:
                    if not isinstance(it, dict) or not isinstance(it.get("message"), str):
                        intake.violations.append("entry without message")
                        return self._answer(400)
                with intake.lock:
                    intake.requests.append({"entries": len(items), "bytes": len(body), "encoding": enc})
                    intake.items.extend(items)
                self._answer(202)

        self.port = free_port()
        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()
        wait_port(self.port)

    def refusal(self, headers) -> bytes:
        """A 403's body: Datadog's, or with ``echo`` the key it was sent."""
        said = f"invalid API key {headers.get('DD-API-KEY')}" if self.echo else "Forbidden"
        return json.dumps({"errors": [said]}).encode()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


# -------------------------------------------------------------------------- outages
class CutProxy:
    """A TCP proxy on 127.0.0.1 in front of a real server, to simulate an outage.

    ``down()`` closes the listening socket (new connections are refused) and resets every
    open connection; ``up()`` listens again on the same port.  ``cut_after`` (bytes sent
    towards the server) takes the proxy down by itself in the middle of a transfer.
    """

    def __init__(self, target_port: int):
        self.target = target_port
        self.port = free_port()
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.sent = 0
        self.cut_after: int | None = None
        self.accepted = 0
        self.refused_while_down = 0
        self.lsock: socket.socket | None = None
        self.up()

    def up(self) -> None:
        with self.lock:
            if self.lsock is not None:
                return
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self.port))
            s.listen(64)
            self.lsock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def down(self) -> None:
        with self.lock:
            s, self.lsock = self.lsock, None
            conns, self.conns = self.conns, []
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for c in conns:
            try:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()  # RST
            except OSError:
                pass

    @property
    def is_up(self) -> bool:
        return self.lsock is not None

    def _accept(self, s: socket.socket) -> None:
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            for x in (c, u):
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                if self.lsock is not s:
                    c.close()
                    u.close()
                    return
                self.accepted += 1
                self.conns += [c, u]
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket, upstream: bool) -> None:
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if upstream:
                    with self.lock:
                        self.sent += len(data)
                        cut = self.cut_after is not None and self.sent >= self.cut_after
                    if cut:
                        self.cut_after = None
                        self.down()
                        return
                b.sendall(data)
        except OSError:
            pass
        finally:
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        self.down()
