"""Helpers for pop3fe's integration tests: a posternd running pop3fe in
front of back-ends (fake ones from pop3fake.py, or real pop3be daemons),
and the checks every failure test ends with: the front-end's fd count is
back to its baseline and `posternctl conns` lists no session."""
import json
import os
import poplib
import socket
import time
import unittest

from harness import Posternd, free_port, wait_for

USERS = {
    "alice@example.test": "alice",
    "bob@example.test": "bob",
}


def users_file(path, pinned=(), extra_lines=()):
    """A passwd-file with PLAIN passwords (tests only). `pinned` are
    (user, host) pairs: user@example.test with password user and host=."""
    with open(path, "w") as f:
        for user, password in USERS.items():
            f.write(f"{user}:{{PLAIN}}{password}\n")
        for user, host in pinned:
            f.write(f"{user}@example.test:{{PLAIN}}{user}::::::host={host}\n")
        for line in extra_lines:
            f.write(line + "\n")


def backend_group(name, port, extra=""):
    return f'{{ name = "{name}"; address = "127.0.0.1"; port = {port}; {extra} }}'


def pop3fe_config(port, backends, extra="", tls=None, modules=("pop3fe",)):
    """`backends`: a list of (name, port) or (name, port, extra)."""
    groups = ", ".join(backend_group(*b) for b in backends)
    tls_lines = ""
    if tls is not None:
        cert, key, tls_port = tls
        tls_lines = (f'cert_file = "{cert}"; key_file = "{key}"; '
                     + (f'tls_listen = ("127.0.0.1:{tls_port}"); ' if tls_port else ""))
    defaults = {"auth_failure_delay": '"10ms"', "auth_failure_delay_max": '"50ms"',
                "connect_timeout": '"1s"', "login_timeout": '"1500ms"',
                "backend_timeout": '"2s"', "health_check_timeout": '"500ms"'}
    settings = "".join(f"  {key} = {value};\n" for key, value in defaults.items()
                       if f"{key} =" not in extra)
    module_list = ", ".join(f'"{m}"' for m in modules)
    return (f'modules = ({module_list});\n'
            'pop3fe = {\n'
            f'  listen = ("127.0.0.1:{port}");\n'
            '  passwd_file = "{base}/users";\n'
            '  allow_plain_passwords = true;\n'
            f'{settings}'
            f'  {tls_lines}\n'
            f'  backends = ( {groups} );\n'
            f'  {extra}\n'
            '};\n')


class Pop3feCase(unittest.TestCase):
    """A test with one pop3fe daemon; self.fakes are torn down at the end."""

    def start_pop3fe(self, backends, extra="", pinned=(), tls=None, users_extra=(),
                     health="60s", users_lines=None, modules=("pop3fe",)):
        self.port = free_port()
        body = pop3fe_config(self.port, backends,
                             f'health_check_interval = "{health}"; {extra}', tls=tls,
                             modules=modules)
        self.daemon = Posternd(self, body, name="pop3fe")
        path = os.path.join(self.daemon.base, "users")
        if users_lines is not None:
            with open(path, "w") as f:
                f.write("".join(line + "\n" for line in users_lines))
        else:
            users_file(path, pinned, users_extra)
        self.daemon.start()
        self.baseline = self.settled_fds()
        return self.daemon

    def fake(self, *args, **kwargs):
        from pop3fake import FakeBackend
        backend = FakeBackend(*args, **kwargs)
        self.addCleanup(backend.close)
        return backend

    # ---- clients ----------------------------------------------------------

    def pop(self, timeout=10):
        client = poplib.POP3("127.0.0.1", self.port, timeout=timeout)
        self.addCleanup(self._quiet_close, client)
        return client

    def login(self, user="alice@example.test", password=None, timeout=10):
        client = self.pop(timeout)
        client.user(user)
        client.pass_(password or USERS.get(user) or user.split("@")[0])
        return client

    @staticmethod
    def _quiet_close(client):
        try:
            client.close()
        except Exception:
            pass

    def raw(self, timeout=10):
        from harness import LineClient
        client = LineClient(self.port, timeout=timeout)
        self.addCleanup(client.close)
        greeting = client.line()
        self.assertTrue(greeting.startswith("+OK"), greeting)
        return client

    # ---- the front-end's state ---------------------------------------------

    def conns(self):
        status, out, err = self.daemon.ctl("conns", "--json")
        self.assertEqual(status, 0, err)
        return json.loads(out)

    def sessions(self):
        """pop3fe connections other than health checks."""
        return [c for c in self.conns()
                if c["module"] == "pop3fe" and c.get("state") != "HEALTH"]

    def backends(self):
        status, out, err = self.daemon.ctl("backends", "--json")
        self.assertEqual(status, 0, err)
        return {b["name"]: b for b in json.loads(out)}

    def settled_fds(self):
        """The fd count with no health check under way: the lowest of a
        few samples."""
        samples = []
        for _ in range(5):
            samples.append(self.daemon.fd_count())
            time.sleep(0.02)
        return min(samples)

    def assert_released(self, timeout=10):
        """Every session gone: conns, fds and per-back-end counters."""
        wait_for(lambda: not self.sessions(), timeout=timeout,
                 what=f"pop3fe sessions to go (left: {self.sessions()})")
        wait_for(lambda: self.daemon.fd_count() <= self.baseline, timeout=timeout,
                 what=f"fd count back to {self.baseline} (now {self.daemon.fd_count()})")
        wait_for(lambda: all(b["sessions"] == 0 for b in self.backends().values()),
                 timeout=timeout, what="per-back-end session counts back to 0")
        self.assertIsNone(self.daemon.proc.poll(), "posternd exited")


def expect_error_then_eof(test, sock_file_client, timeout=10):
    """Read until EOF; return the lines received."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = sock_file_client.line()
        except (ConnectionResetError, socket.timeout):
            break
        if line is None:
            return lines
        lines.append(line)
    test.fail(f"no EOF within {timeout}s; got {lines}")
