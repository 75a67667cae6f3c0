"""Helpers for the pop3be integration tests: a posternd with pop3be on
loopback, users, and mail delivered into their Maildirs.

Mail is delivered three ways: with tests/integration/maildeliver (the
mailstore library, as queue-store delivers), or written as Maildir files
directly (fast, for the 100,000-message mailbox), or by Dovecot's tools in
the interop tests.
"""
import os
import poplib
import ssl
import subprocess

from harness import BUILDDIR, LineClient, Posternd, free_port, make_cert

MAILDELIVER = os.path.join(BUILDDIR, "tests", "integration", "maildeliver")

USERS = {"alice@example.test": "alice", "bob@example.test": "bob",
         "carol@example.test": "carol pw with spaces"}


class Pop3Server:
    """posternd with pop3be: `port` allows plaintext auth, `strict_port`
    needs STLS first, `tls_port` is implicit TLS."""

    def __init__(self, test, extra="", users=None, name="pop3be", start=True,
                 listeners_extra=""):
        self.test = test
        self.port = free_port()
        self.strict_port = free_port()
        self.tls_port = free_port()
        self.daemon = Posternd(test, "modules = ();\n", name=name)
        self.base = self.daemon.base
        self.cert, self.key = make_cert(self.base)
        self.users_file = os.path.join(self.base, "users")
        self.write_users(users or USERS)
        self.daemon.write_config(self.config(extra, listeners_extra))
        if start:
            self.daemon.start()

    def config(self, extra="", listeners_extra=""):
        # short failure delays unless the test sets its own
        delays = ("" if "auth_failure_delay" in extra else
                  'auth_failure_delay = "50ms"; auth_failure_delay_max = "200ms";')
        return f'''modules = ("pop3be");
pop3be = {{
  listeners = (
    {{ address = "127.0.0.1:{self.port}"; plaintext_auth = true; {listeners_extra} }},
    {{ address = "127.0.0.1:{self.strict_port}"; }},
    {{ address = "127.0.0.1:{self.tls_port}"; implicit_tls = true; }}
  );
  passwd_file = "{self.users_file}";
  allow_plain_passwords = true;
  cert_file = "{self.cert}";
  key_file = "{self.key}";
  fsync = false;
  {delays}
  {extra}
}};
'''

    def reload(self, extra="", listeners_extra=""):
        """Rewrite the configuration and SIGHUP; waits until it is applied."""
        self.daemon.reload(self.config(extra, listeners_extra))

    def write_users(self, users):
        with open(self.users_file, "w") as f:
            for user, password in users.items():
                local = user.split("@")[0]
                f.write(f"{user}:{{PLAIN}}{password}::::{self.base}/mail/{local}::"
                        f"userdb_mail=maildir:~/Maildir\n")

    def maildir(self, user="alice@example.test"):
        return os.path.join(self.base, "mail", user.split("@")[0], "Maildir")

    def deliver(self, message, user="alice@example.test"):
        """Deliver bytes with the mailstore library; returns the file name."""
        proc = subprocess.run([MAILDELIVER, "-n", self.maildir(user), "-"], input=message,
                              capture_output=True, timeout=30)
        if proc.returncode != 0:
            raise AssertionError(f"maildeliver failed: {proc.stderr!r}")
        return proc.stdout.decode().strip()

    def pop(self, user="alice@example.test", password=None, port=None, timeout=10):
        """A poplib client, logged in with USER/PASS."""
        client = poplib.POP3("127.0.0.1", port or self.port, timeout=timeout)
        self.test.addCleanup(close_quietly, client)
        client.user(user)
        client.pass_(password if password is not None else USERS[user])
        return client

    def line_client(self, port=None):
        client = LineClient(port or self.port)
        self.test.addCleanup(client.close)
        greeting = client.line()
        assert greeting.startswith("+OK "), greeting
        return client

    def tls_context(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        return ctx

    def log(self):
        return self.daemon.log()


def close_quietly(client):
    try:
        client.close()
    except Exception:
        pass


def crlf_form(message):
    """What a POP3 client receives for a stored message: bare LF -> CRLF."""
    out = bytearray()
    prev = None
    for b in message:
        if b == 0x0A and prev != 0x0D:
            out += b"\r"
        out.append(b)
        prev = b
    return bytes(out)


def retr_bytes(client, which):
    """RETR through poplib, joined back into the CRLF form (poplib
    un-stuffs dots and strips the terminator)."""
    resp, lines, octets = client.retr(which)
    assert resp.startswith(b"+OK"), resp
    return b"".join(line + b"\r\n" for line in lines), octets


def multiline(client):
    """Read a multi-line answer from a LineClient (raw lines)."""
    lines = []
    while True:
        line = client.line()
        if line is None:
            raise AssertionError("EOF in multi-line answer")
        if line == ".":
            return lines
        lines.append(line)
