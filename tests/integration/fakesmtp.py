"""A scriptable remote SMTP server on 127.0.0.1 for the outbound client's
tests: what Postfix's smtp-sink cannot do (STARTTLS, DSN, SMTPUTF8, a
chosen EHLO list, slow or refused replies, holding connections open).

It records every command line with the TLS state it arrived in and whether
it came while an earlier reply was still unsent (pipelined), every chunk
read from a socket (so batching is visible), every message with its
envelope, and how many connections were open at once.

One thread runs a select() loop over every connection. In each round,
input on open connections is read before new connections are accepted:
a client that sent QUIT before it connected again is counted as gone
before the new connection is counted. Replies are queued with a due time,
so a reply can be delayed without blocking other connections; sockets
stay blocking (with a timeout) for the short writes and the TLS handshake,
which on loopback take no time worth the complexity of doing them
asynchronously.
"""
import selectors
import shutil
import socket
import ssl
import tempfile
import threading
import time

from harness import make_cert

DEFAULT_CAPS = ("PIPELINING", "SIZE 10240000", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN",
                "SMTPUTF8")
# A TLS alert record: fatal handshake_failure. What a server sends when it
# cannot agree on anything with the client.
TLS_ALERT = b"\x15\x03\x03\x00\x02\x02\x28"


def params(line):
    """The ESMTP parameters of a MAIL or RCPT line: {"SIZE": "123", "SMTPUTF8": None}."""
    rest = line.split(">", 1)[1] if ">" in line else ""
    result = {}
    for word in rest.split():
        key, sep, value = word.partition("=")
        result[key.upper()] = value if sep else None
    return result


class Command:
    def __init__(self, conn, tls, line, pipelined):
        self.conn = conn          # connection number, from 1
        self.tls = tls            # TLS was active when it arrived
        self.line = line          # without CR LF, decoded as UTF-8
        self.pipelined = pipelined  # an earlier reply was still unsent
        self.verb = line.split(" ", 1)[0].split(":", 1)[0].upper()

    def __repr__(self):
        return f"<{self.conn}{' tls' if self.tls else ''}{' pipe' if self.pipelined else ''}: {self.line}>"


class Message:
    def __init__(self, conn, tls, mail, rcpts, data):
        self.conn, self.tls, self.mail, self.rcpts, self.data = conn, tls, mail, rcpts, data


class _Conn:
    def __init__(self, number, sock):
        self.number = number
        self.sock = sock
        self.inbuf = b""
        self.out = []             # [(due time, bytes, action after sending)]
        self.greeted = False
        self.tls = False
        self.data_mode = False
        self.mail = None
        self.rcpts = []
        self.active = True        # counted in FakeSmtp.active
        self.closed = False


class FakeSmtp:
    """caps: EHLO keywords (STARTTLS is added while TLS is off when
    `starttls`); tls_fail: answer STARTTLS with 220, then a TLS alert and
    close; replies: {"GREETING"|verb|"DOT": "250 text" or f(line) -> text or
    None for the default}; delays: {verb|"DOT": seconds before the reply};
    hold: accept connections but greet none until release()."""

    def __init__(self, test, caps=DEFAULT_CAPS, starttls=False, tls_fail=False, replies=None,
                 delays=None, hold=False):
        self.caps = list(caps)
        self.starttls = starttls
        self.tls_fail = tls_fail
        self.replies = dict(replies or {})
        self.delays = dict(delays or {})
        self.gate = threading.Event()
        if not hold:
            self.gate.set()
        self.lock = threading.Lock()
        self.commands = []
        self.batches = []         # [(conn, [lines of one read])]
        self.messages = []
        self.sni = []             # server names clients asked for
        self.handshakes = 0       # completed TLS handshakes
        self.injected = []        # plain text that came after STARTTLS
        self.connections = 0
        self.active = 0
        self.max_active = 0
        self.ctx = None
        if starttls:
            certdir = tempfile.mkdtemp(prefix="postern-fakesmtp-")
            test.addCleanup(shutil.rmtree, certdir, True)
            cert, key = make_cert(certdir)
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert, key)
            self.ctx.sni_callback = self._sni
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.conns = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        test.addCleanup(self.stop)

    # ---- for the tests ----

    def release(self):
        """Greet held connections and every later one."""
        self.gate.set()

    def stop(self):
        self.running = False
        self.gate.set()
        self.thread.join(timeout=10)
        for conn in self.conns:
            self._close(conn)
        self.listener.close()

    def lines(self, conn=None, verb=None):
        with self.lock:
            return [c for c in self.commands if (conn is None or c.conn == conn) and
                    (verb is None or c.verb == verb)]

    def got(self, count=1):
        """The messages received, once there are `count` (for wait_for)."""
        with self.lock:
            return list(self.messages) if len(self.messages) >= count else None

    # ---- the loop ----

    def _sni(self, sslobj, name, ctx):
        if name is not None:
            self.sni.append(name)

    def _run(self):
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ, None)
        while self.running:
            self._send_due(sel)
            ready = sel.select(timeout=0.02)
            for key, _ in ready:
                if key.data is not None:
                    self._readable(sel, key.data)
            if any(key.data is None for key, _ in ready):
                sock, _ = self.listener.accept()
                sock.settimeout(5)
                with self.lock:
                    self.connections += 1
                    self.active += 1
                    self.max_active = max(self.max_active, self.active)
                    conn = _Conn(self.connections, sock)
                self.conns.append(conn)
                sel.register(sock, selectors.EVENT_READ, conn)
        sel.close()

    def _gone(self, conn):
        with self.lock:
            if conn.active:
                conn.active = False
                self.active -= 1

    def _close(self, conn, sel=None):
        self._gone(conn)
        if conn.closed:
            return
        conn.closed = True
        if sel is not None:
            sel.unregister(conn.sock)
        try:
            conn.sock.close()
        except OSError:
            pass

    def _reply(self, conn, verb, line, default, action=None, when=None):
        """Queue the reply (the override, else `default`); `action(conn,
        sel)` runs once it is sent, if `when(text)` is true."""
        override = self.replies.get(verb)
        text = override(line) if callable(override) else override
        text = text or default
        if when is not None and not when(text):
            action = None
        now = time.monotonic()
        due = now + self.delays.get(verb, 0)
        if conn.out:
            due = max(due, conn.out[-1][0])
        conn.out.append((due, text.encode() + b"\r\n", action))
        return text

    def _send_due(self, sel):
        now = time.monotonic()
        for conn in list(self.conns):
            if conn.closed:
                continue
            if not conn.greeted and self.gate.is_set():
                conn.greeted = True
                self._reply(conn, "GREETING", "", "220 fake.test ESMTP fake")
            while conn.out and conn.out[0][0] <= now and not conn.closed:
                _, data, action = conn.out.pop(0)
                try:
                    conn.sock.sendall(data)
                except OSError:
                    self._close(conn, sel)
                    break
                if action is not None:
                    action(conn, sel)

    def _readable(self, sel, conn):
        try:
            data = conn.sock.recv(65536)
            while data and conn.tls and conn.sock.pending():
                data += conn.sock.recv(65536)
        except (OSError, ssl.SSLError):
            data = b""
        if not data:
            self._close(conn, sel)
            return
        conn.inbuf += data
        batch = []
        while not conn.closed:
            if conn.data_mode:
                if not self._data(conn):
                    break
                continue
            if b"\n" not in conn.inbuf:
                break
            raw, conn.inbuf = conn.inbuf.split(b"\n", 1)
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            batch.append(line)
            self._command(sel, conn, line)
        if batch:
            with self.lock:
                self.batches.append((conn.number, batch))

    def _data(self, conn):
        """Take a complete message from inbuf, if there is one."""
        buf = b"\r\n" + conn.inbuf
        end = buf.find(b"\r\n.\r\n")
        if end < 0:
            return False
        body = buf[2:end + 2] if end > 0 else b""
        conn.inbuf = buf[end + 5:]
        lines = body.split(b"\r\n")
        body = b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)
        conn.data_mode = False
        text = self._reply(conn, "DOT", "", "250 2.0.0 Ok: queued")
        if text.startswith("2"):
            with self.lock:
                self.messages.append(Message(conn.number, conn.tls, conn.mail, conn.rcpts, body))
        conn.mail, conn.rcpts = None, []
        return True

    def _command(self, sel, conn, line):
        cmd = Command(conn.number, conn.tls, line, bool(conn.out))
        with self.lock:
            self.commands.append(cmd)
        verb = cmd.verb
        if verb == "EHLO":
            caps = list(self.caps)
            if self.starttls and not conn.tls:
                caps.append("STARTTLS")
            lines = ["fake.test"] + caps
            default = "\r\n".join(f"250-{l}" for l in lines[:-1]) + f"\r\n250 {lines[-1]}"
            self._reply(conn, verb, line, default)
        elif verb == "HELO":
            self._reply(conn, verb, line, "250 fake.test")
        elif verb == "STARTTLS" and self.starttls and not conn.tls:
            text = self._reply(conn, verb, line, "220 2.0.0 Ready to start TLS",
                               self._start_tls, lambda text: text.startswith("220"))
            if text.startswith("220") and conn.inbuf:
                # RFC 3207: nothing may follow STARTTLS in the same flight.
                self.injected.append(conn.inbuf)
                conn.inbuf = b""
        elif verb == "MAIL":
            text = self._reply(conn, verb, line, "250 2.1.0 Ok")
            if text.startswith("2"):
                conn.mail, conn.rcpts = line, []
        elif verb == "RCPT":
            text = self._reply(conn, verb, line, "250 2.1.5 Ok"
                               if conn.mail else "503 5.5.1 MAIL first")
            if text.startswith("2"):
                conn.rcpts.append(line)
        elif verb == "DATA":
            ok = conn.mail is not None and conn.rcpts
            text = self._reply(conn, verb, line, "354 End data with <CR><LF>.<CR><LF>"
                               if ok else "554 5.5.1 No valid recipients")
            conn.data_mode = text.startswith("354")
        elif verb in ("RSET", "NOOP"):
            conn.mail, conn.rcpts = None, []
            self._reply(conn, verb, line, "250 2.0.0 Ok")
        elif verb == "QUIT":
            self._gone(conn)
            self._reply(conn, verb, line, "221 2.0.0 Bye", self._close)
        else:
            self._reply(conn, verb, line, "502 5.5.2 Not implemented")

    def _start_tls(self, conn, sel):
        if self.tls_fail:
            try:
                conn.sock.sendall(TLS_ALERT)
            except OSError:
                pass
            self._close(conn, sel)
            return
        sel.unregister(conn.sock)
        try:
            conn.sock = self.ctx.wrap_socket(conn.sock, server_side=True)
        except (OSError, ssl.SSLError):
            conn.closed = True
            self._gone(conn)
            return
        conn.tls = True
        conn.inbuf = b""
        with self.lock:
            self.handshakes += 1
        sel.register(conn.sock, selectors.EVENT_READ, conn)
