"""Integration tests of pop3fe: proxied sessions with poplib and fetchmail,
the commands before login, TLS, the back-end directory, and every failure
of a back-end at login time and mid-session. Back-ends are the fakes of
pop3fake.py (the kinds of broken a real back-end can be); each failure test
ends with the front-end's fds, sessions and per-back-end counters back to
where they started."""
import json
import os
import poplib
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import unittest

from harness import LineClient, Posternd, free_port, make_cert, wait_for
from pop3fake import FakeBackend, message
from pop3fe_util import Pop3feCase, expect_error_then_eof, pop3fe_config, users_file

HERE = os.path.dirname(os.path.abspath(__file__))


class Sessions(Pop3feCase):
    def setUp(self):
        self.be = self.fake(name="be1")
        self.start_pop3fe([("be1", self.be.port)])

    def test_poplib_session(self):
        client = self.pop()
        self.assertTrue(client.getwelcome().startswith(b"+OK"))
        client.user("alice@example.test")
        self.assertEqual(client.pass_("alice"), b"+OK Logged in.")
        self.assertEqual(client.stat()[0], 3)
        lines = client.retr(2)[1]
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", message(2))
        self.assertEqual(client.uidl()[1][0], b"1 uid1")
        self.assertTrue(client.quit().startswith(b"+OK"))
        # The back-end learnt the real client and the hop count.
        sport = client.sock.getsockname()[1] if client.sock else None
        self.assertEqual(len(self.be.xclients), 1)
        self.assertRegex(self.be.xclients[0], r"^XCLIENT ADDR=127\.0\.0\.1 PORT=\d+ HOP=1$")
        del sport
        self.assert_released()
        self.assertEqual(self.backends()["be1"]["total_sessions"], 1)

    def test_pipelined_commands_after_login(self):
        client = self.raw()
        client.send("USER alice@example.test\r\nPASS alice\r\nSTAT\r\nNOOP\r\nQUIT\r\n")
        self.assertEqual(client.line(), "+OK")
        self.assertEqual(client.line(), "+OK Logged in.")
        self.assertTrue(client.line().startswith("+OK 3 "))
        self.assertEqual(client.line(), "+OK")
        self.assertEqual(client.line(), "+OK bye")
        self.assertTrue(client.at_eof())
        self.assert_released()

    def test_half_close_after_pipelined_commands(self):
        """A client that sends everything and shuts down its side, as
        `printf ... | nc` does, still gets every answer."""
        client = self.raw()
        client.send("USER alice@example.test\r\nPASS alice\r\nSTAT\r\nQUIT\r\n")
        client.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(client.line(), "+OK")
        self.assertEqual(client.line(), "+OK Logged in.")
        self.assertTrue(client.line().startswith("+OK 3 "))
        self.assertEqual(client.line(), "+OK bye")
        self.assertTrue(client.at_eof())
        self.assert_released()

    def test_half_close_without_quit(self):
        """The half-close is passed on: the back-end answers what came
        before it and ends the session itself (no QUIT: no UPDATE)."""
        client = self.raw()
        client.send("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZQ==\r\nSTAT\r\n")
        client.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(client.line(), "+OK Logged in.")
        self.assertTrue(client.line().startswith("+OK 3 "))
        self.assertTrue(client.at_eof())
        self.assert_released()

    def test_half_close_after_wrong_password(self):
        client = self.raw()
        client.send("USER alice@example.test\r\nPASS wrong\r\nSTAT\r\n")
        client.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(client.line(), "+OK")
        self.assertTrue(client.line().startswith("-ERR [AUTH]"))
        self.assertTrue(client.line().startswith("-ERR"))
        self.assertTrue(client.at_eof())
        self.assertEqual(self.be.xclients, [])   # no back-end login
        self.assert_released()

    def test_auth_plain(self):
        import base64
        token = base64.b64encode(b"\0alice@example.test\0alice").decode()
        client = self.raw()
        self.assertEqual(client.command("AUTH"), "+OK")
        self.assertEqual(client.line(), "PLAIN")
        self.assertEqual(client.line(), ".")
        # Continuation, cancelled.
        self.assertEqual(client.command("AUTH PLAIN"), "+ ")
        self.assertTrue(client.command("*").startswith("-ERR"))
        # Bad base64, an authzid of someone else.
        self.assertTrue(client.command("AUTH PLAIN !!!!").startswith("-ERR [AUTH]"))
        other = base64.b64encode(b"bob@example.test\0alice@example.test\0alice").decode()
        self.assertTrue(client.command("AUTH PLAIN " + other).startswith("-ERR [AUTH]"))
        self.assertTrue(client.command("AUTH CRAM-MD5").startswith("-ERR"))
        # Continuation, then the response.
        self.assertEqual(client.command("AUTH PLAIN"), "+ ")
        self.assertEqual(client.command(token), "+OK Logged in.")
        self.assertTrue(client.command("STAT").startswith("+OK 3"))
        client.close()
        self.assert_released()
        # And with an initial response.
        client = self.raw()
        self.assertEqual(client.command("AUTH PLAIN " + token), "+OK Logged in.")
        self.assertEqual(client.command("QUIT"), "+OK bye")
        self.assert_released()

    def test_backend_login_plain(self):
        """backend_login = "plain" logs in on the back-end with AUTH PLAIN."""
        self.daemon.stop()
        self.start_pop3fe([("be1", self.be.port)], extra='backend_login = "plain";')
        self.login().quit()
        self.assertTrue(any(c.startswith("AUTH PLAIN ") for c in self.be.commands))
        self.assertFalse(any(c.startswith("PASS") for c in self.be.commands))

    def test_wrong_password_goes_nowhere(self):
        before = self.be.connections
        client = self.raw()
        self.assertEqual(client.command("USER alice@example.test"), "+OK")
        self.assertEqual(client.command("PASS wrong"), "-ERR [AUTH] Authentication failed.")
        self.assertEqual(client.command("USER nobody@example.test"), "+OK")
        self.assertEqual(client.command("PASS x"), "-ERR [AUTH] Authentication failed.")
        # The third failure ends the connection (max_auth_attempts = 3).
        self.assertEqual(client.command("USER alice@example.test"), "+OK")
        self.assertEqual(client.command("PASS wrong"), "-ERR [AUTH] Authentication failed.")
        self.assertTrue(client.at_eof())
        # No back-end was asked: no connection, beyond health checks.
        self.assertEqual(self.be.logins, 0)
        self.assertFalse(any(c.startswith("USER") for c in self.be.commands))
        del before
        self.assert_released()

    def test_commands_before_login(self):
        client = self.raw()
        self.assertEqual(client.command("NOOP"), "+OK")
        self.assertEqual(client.command("STAT"), "-ERR Log in first.")
        self.assertEqual(client.command("RETR 1"), "-ERR Log in first.")
        self.assertEqual(client.command("PASS alice"), "-ERR No user name given.")
        self.assertEqual(client.command("FOO"), "-ERR Unknown command.")
        self.assertEqual(client.command(""), "-ERR Empty command.")
        # XCLIENT from an untrusted peer is just an unknown command.
        self.assertEqual(client.command("XCLIENT ADDR=1.2.3.4"), "-ERR Unknown command.")
        self.assertEqual(client.command("STLS"), "-ERR TLS not available.")
        client.send("USER a\0b\r\n")
        self.assertEqual(client.line(), "-ERR Invalid characters in command.")
        client.send("USER " + "x" * 5000 + "\r\n")
        self.assertEqual(client.line(), "-ERR Line too long.")
        # Bare LF is a line end; the session goes on.
        client.send("NOOP\n")
        self.assertEqual(client.line(), "+OK")
        # The tenth bad command ends the session; what follows is not read.
        client.send("BAD\r\nNOOP\r\n")
        lines = expect_error_then_eof(self, client)
        self.assertEqual(lines, ["-ERR Unknown command."])
        self.assert_released()

    def test_client_vanishes_mid_command(self):
        for partial in ("US", "USER alice@example.test\r\nPA", "AUTH PLAIN\r\n"):
            client = self.raw()
            client.send(partial)
            client.close()
        self.assert_released()

    def test_client_vanishes_during_login(self):
        """The client goes while its password is checked or while the
        front-end logs in on a back-end that does not answer."""
        self.be.mode = "silent"
        client = self.raw()
        client.send("USER alice@example.test\r\nPASS alice\r\n")
        self.assertEqual(client.line(), "+OK")
        wait_for(lambda: self.be.connections >= 1, what="the back-end connection")
        client.close()
        self.assert_released()

    def test_client_vanishes_mid_session(self):
        client = self.login()
        client.stat()
        client.sock.shutdown(socket.SHUT_RDWR)
        client.sock.close()
        self.assert_released()
        self.assertIsNone(self.daemon.proc.poll())

    def test_conns_show_user_and_state(self):
        client = self.login()
        sessions = self.sessions()
        self.assertEqual(len(sessions), 2, sessions)  # client and back-end legs
        self.assertTrue(all(s["user"] == "alice@example.test" for s in sessions), sessions)
        self.assertTrue(all(s["state"] == "PROXY" for s in sessions), sessions)
        self.assertEqual(self.backends()["be1"]["sessions"], 1)
        client.quit()
        self.assert_released()

    def test_fetchmail(self):
        if shutil.which("fetchmail") is None:
            self.skipTest("fetchmail not installed")
        home = os.path.join(self.daemon.base, "fm")
        os.makedirs(home)
        out = os.path.join(home, "mbox")
        rc = os.path.join(home, "fetchmailrc")
        with open(rc, "w") as f:
            f.write(f'poll 127.0.0.1 protocol pop3 port {self.port} '
                    f'user "alice@example.test" password "alice" keep sslproto "" '
                    f'mda "cat >> {out}"\n')
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=home, FETCHMAILHOME=home)
        proc = subprocess.run(["fetchmail", "-f", rc, "--nodetach", "-v"],
                              capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        with open(out, "rb") as f:
            data = f.read()
        for i in (1, 2, 3):
            self.assertIn(f"Subject: message {i}".encode(), data)
        self.assert_released()


class Tls(Pop3feCase):
    def setUp(self):
        self.be = self.fake(name="be1")
        self.cert, self.key = make_cert(self._tmp())
        self.tls_port = free_port()
        self.start_pop3fe([("be1", self.be.port)], tls=(self.cert, self.key, self.tls_port))

    def _tmp(self):
        import tempfile
        path = tempfile.mkdtemp(prefix="pop3fe-tls-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def context(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        return ctx

    def test_stls(self):
        client = self.pop()
        self.assertIn("STLS", client.capa())
        client.stls(context=self.context())
        self.assertNotIn("STLS", client.capa())
        client.user("alice@example.test")
        self.assertEqual(client.pass_("alice"), b"+OK Logged in.")
        self.assertEqual(client.stat()[0], 3)
        client.quit()
        self.assert_released()

    def test_pipelined_junk_after_stls_is_dropped(self):
        client = self.raw()
        client.send("STLS\r\nUSER alice@example.test\r\nPASS alice\r\n")
        self.assertEqual(client.line(), "+OK Begin TLS negotiation now.")
        tls = self.context().wrap_socket(client.sock, server_hostname="localhost")
        tls_client = LineClient(self.port, sock=tls)
        # The USER/PASS sent in clear were dropped: no login happened.
        self.assertEqual(tls_client.command("PASS alice"), "-ERR No user name given.")
        self.assertEqual(self.be.logins, 0)
        tls_client.close()
        self.assert_released()

    def test_implicit_tls(self):
        client = poplib.POP3_SSL("127.0.0.1", self.tls_port, context=self.context(), timeout=10)
        self.addCleanup(self._quiet_close, client)
        client.user("alice@example.test")
        client.pass_("alice")
        self.assertEqual(client.stat()[0], 3)
        client.quit()
        self.assert_released()


class LoginFailover(Pop3feCase):
    """A back-end that cannot take the login: the next one in the user's
    list, transparently; no back-end left: -ERR [SYS/TEMP] and close."""

    def setUp(self):
        self.be1 = self.fake(name="be1")
        self.be2 = self.fake(name="be2")

    def start(self, extra="", be1_port=None, health="60s"):
        self.start_pop3fe([("be1", be1_port or self.be1.port), ("be2", self.be2.port)],
                          extra=extra, pinned=[("pin1", "be1"), ("pin2", "be2")],
                          health=health, modules=("pop3fe", "pop3fe_events"))
        # The first health checks ran with good back-ends.
        if be1_port is None:
            wait_for(lambda: all(b["state"] == "up" for b in self.backends().values())
                     and self.be1.connections > 0, what="back-ends checked and up")

    def login_pin1(self):
        started = time.monotonic()
        client = self.login("pin1@example.test", "pin1")
        self.assertEqual(client.stat()[0], 3)
        client.quit()
        return time.monotonic() - started

    def test_connection_refused(self):
        dead_port = free_port()
        self.start(be1_port=dead_port)
        elapsed = self.login_pin1()
        self.assertLess(elapsed, 1.0)
        self.assertEqual(self.be2.logins, 1)
        be1 = self.backends()["be1"]
        self.assertEqual(be1["state"], "down")
        self.assertIn("refused", be1["last_error"])
        self.daemon.wait_log("back-end be1 (127.0.0.1:%d) is down" % dead_port)
        self.daemon.wait_log("event backend.down module=pop3fe name=be1")
        self.assertIn("refused", self.daemon.log().split("event backend.down", 1)[1]
                      .split("\n", 1)[0])
        # Down back-ends are skipped: the next login does not even try.
        self.login_pin1()
        self.assertEqual(self.be2.logins, 2)
        self.assert_released()

    def test_connect_timeout(self):
        # A listener whose accept queue is full drops SYNs: connect hangs.
        full = socket.socket()
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        self.addCleanup(full.close)
        fillers = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(full.getsockname())
            except BlockingIOError:
                pass
            fillers.append(s)
            self.addCleanup(s.close)
        time.sleep(0.2)
        self.start(be1_port=full.getsockname()[1], health="60s",
                   extra='health_check_timeout = "3s";')
        elapsed = self.login_pin1()
        self.assertGreater(elapsed, 0.9)
        self.assertLess(elapsed, 3.0)
        self.assertEqual(self.backends()["be1"]["state"], "down")
        self.assertIn("timeout", self.backends()["be1"]["last_error"])
        self.assert_released()

    def test_greeting_timeout(self):
        self.start()
        self.be1.mode = "silent"
        elapsed = self.login_pin1()
        self.assertGreater(elapsed, 1.4)  # login_timeout 1.5 s
        self.assertLess(elapsed, 3.0)
        self.assertEqual(self.backends()["be1"]["state"], "down")
        self.assertIn("no greeting in time", self.backends()["be1"]["last_error"])
        self.assert_released()

    def test_garbage_greeting(self):
        self.start()
        self.be1.mode = "garbage"
        self.assertLess(self.login_pin1(), 1.0)
        self.assertEqual(self.backends()["be1"]["state"], "down")
        self.assertIn("not pop3", self.backends()["be1"]["last_error"])
        self.assert_released()

    def greeting_case(self, mode, down):
        self.start()
        self.be1.mode = mode
        self.assertLess(self.login_pin1(), 2.5)
        self.assertEqual(self.be2.logins, 1)
        self.assertEqual(self.backends()["be1"]["state"], "down" if down else "up")
        self.assert_released()

    def test_reset_at_once(self):
        self.greeting_case("reset", True)

    def test_trickled_greeting(self):
        self.greeting_case("trickle", True)

    def test_err_greeting(self):
        # A back-end that says "not now" is alive: it stays up.
        self.greeting_case("err", False)

    def test_sys_temp_fails_over_without_marking_down(self):
        self.start()
        self.be1.login = "temp"
        self.assertLess(self.login_pin1(), 1.0)
        be1 = self.backends()["be1"]
        self.assertEqual(be1["state"], "up")
        self.assertIn("SYS/TEMP", be1["last_error"])
        self.assertEqual(self.be2.logins, 1)
        self.assert_released()

    def test_in_use_is_passed_on(self):
        self.start()
        self.be1.login = "in-use"
        client = self.raw()
        client.command("USER pin1@example.test")
        self.assertEqual(client.command("PASS pin1"), "-ERR [IN-USE] mailbox locked")
        self.assertEqual(self.be2.logins, 0)
        # The client may try again, in the same connection.
        self.be1.login = "ok"
        self.assertEqual(client.command("USER pin1@example.test"), "+OK")
        self.assertEqual(client.command("PASS pin1"), "+OK Logged in.")
        client.close()
        self.assert_released()

    def test_backend_auth_refusal_is_a_mismatch(self):
        self.start()
        self.be1.login = "auth"
        client = self.raw()
        client.command("USER pin1@example.test")
        self.assertTrue(client.command("PASS pin1").startswith("-ERR [SYS/TEMP]"))
        self.assertTrue(client.at_eof())
        # No other back-end was tried: it shares the user database.
        self.assertEqual(self.be2.logins, 0)
        self.daemon.wait_log("configuration mismatch")
        self.assert_released()

    def test_no_backend_left(self):
        self.start()
        self.be1.mode = "reset"
        self.be2.mode = "reset"
        client = self.raw()
        client.command("USER alice@example.test")
        reply = client.command("PASS alice")
        self.assertTrue(reply.startswith("-ERR [SYS/TEMP]"), reply)
        self.assertTrue(client.at_eof())
        self.assertEqual({b["state"] for b in self.backends().values()}, {"down"})
        # Both down: the next login is refused at once.
        started = time.monotonic()
        client = self.raw()
        client.command("USER alice@example.test")
        self.assertTrue(client.command("PASS alice").startswith("-ERR [SYS/TEMP]"))
        self.assertLess(time.monotonic() - started, 1.0)
        self.assert_released()

    def test_host_field_routes(self):
        self.start()
        for _ in range(3):
            self.login("pin2@example.test", "pin2").quit()
        self.assertEqual(self.be2.logins, 3)
        self.assertEqual(self.be1.logins, 0)
        self.assert_released()

    def test_unknown_host_field_is_an_error(self):
        self.start_pop3fe([("be1", self.be1.port)],
                          users_extra=["lost@example.test:{PLAIN}lost::::::host=10.9.9.9"])
        client = self.raw()
        client.command("USER lost@example.test")
        self.assertTrue(client.command("PASS lost").startswith("-ERR [SYS/TEMP]"))
        self.daemon.wait_log("host=10.9.9.9 names no configured back-end or pool")
        self.assert_released()

    def test_session_limit_spills_to_next(self):
        self.start(extra='backend_max_sessions = 1;')
        first = self.login("pin1@example.test", "pin1")
        second = self.login("pin1@example.test", "pin1")
        self.assertEqual(self.be1.logins, 1)
        self.assertEqual(self.be2.logins, 1)
        first.quit()
        second.quit()
        self.assert_released()

    def test_recovery_brings_users_back(self):
        self.start(health="300ms")
        self.be1.mode = "reset"
        self.login_pin1()
        wait_for(lambda: self.backends()["be1"]["state"] == "down", what="be1 down")
        self.be1.mode = "good"
        wait_for(lambda: self.backends()["be1"]["state"] == "up", timeout=5, what="be1 up")
        self.daemon.wait_log("back-end be1 (127.0.0.1:%d) is up again" % self.be1.port)
        # The events, with their payload, as a subscriber saw them.
        address = "127.0.0.1:%d" % self.be1.port
        self.daemon.wait_log(f"event backend.down module=pop3fe name=be1 address={address} "
                             "pool=default up=0 sessions=")
        self.daemon.wait_log(f"event backend.up module=pop3fe name=be1 address={address} "
                             "pool=default up=1 sessions=0 error=-")
        before = self.be1.logins
        self.login_pin1()
        self.assertEqual(self.be1.logins, before + 1)
        self.assert_released()


class MidSession(Pop3feCase):
    """A back-end that dies mid-session: the client gets an error (when it
    waits for an answer) and a prompt close; everything is released."""

    def setUp(self):
        self.be = self.fake(name="be1")
        self.start_pop3fe([("be1", self.be.port)])

    def retr_outcome(self, action, timeout=10):
        """Log in, break the back-end on RETR, return (lines, seconds)."""
        self.be.on_retr = action
        client = self.raw(timeout=timeout)
        client.command("USER alice@example.test")
        self.assertEqual(client.command("PASS alice"), "+OK Logged in.")
        started = time.monotonic()
        client.send("RETR 1\r\n")
        lines = expect_error_then_eof(self, client, timeout=timeout)
        return lines, time.monotonic() - started

    def test_backend_closes(self):
        lines, elapsed = self.retr_outcome("die")
        self.assertEqual(lines, ["-ERR [SYS/TEMP] back-end connection lost"])
        self.assertLess(elapsed, 1.0)
        self.assert_released()

    def test_backend_resets(self):
        lines, elapsed = self.retr_outcome("rst")
        self.assertEqual(lines, ["-ERR [SYS/TEMP] back-end connection lost"])
        self.assertLess(elapsed, 1.0)
        self.assert_released()

    def test_backend_never_answers(self):
        lines, elapsed = self.retr_outcome("silent")
        self.assertEqual(lines, ["-ERR [SYS/TEMP] back-end connection lost"])
        self.assertGreater(elapsed, 1.5)   # backend_timeout 2 s
        self.assertLess(elapsed, 4.0)
        self.daemon.wait_log("did not answer in time")
        self.assert_released()

    def test_backend_trickles(self):
        lines, elapsed = self.retr_outcome("trickle")
        # Bytes of an answer were relayed: just closed, no line of ours.
        self.assertTrue(all(not l.startswith("-ERR") for l in lines), lines)
        self.assertLess(elapsed, 5.0)
        self.daemon.wait_log("stalled in the middle of a line")
        self.assert_released()

    def test_backend_sends_garbage(self):
        lines, elapsed = self.retr_outcome("garbage")
        self.assertFalse(any("back-end connection lost" in l for l in lines))
        self.assertLess(elapsed, 5.0)
        self.assert_released()

    def test_backend_stops_mid_message(self):
        lines, elapsed = self.retr_outcome("half")
        self.assertTrue(lines[0].startswith("+OK"), lines)
        self.assertFalse(any("back-end connection lost" in l for l in lines))
        self.assertLess(elapsed, 5.0)
        self.assert_released()

    def test_idle_client_after_backend_death(self):
        """Nothing asked when the back-end went: the client is closed."""
        client = self.raw()
        client.command("USER alice@example.test")
        self.assertEqual(client.command("PASS alice"), "+OK Logged in.")
        self.be.close()
        lines = expect_error_then_eof(self, client)
        self.assertEqual(lines, [])
        self.assert_released()


class KilledBackend(Pop3feCase):
    """Back-ends in processes of their own: SIGKILL (FIN from the kernel)
    and SIGSTOP (a silent drop: no FIN, no answers)."""

    def spawn(self, port):
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "pop3fake.py"), str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.addCleanup(self._reap, proc)
        self.assertEqual(proc.stdout.readline().strip(), b"ready")
        return proc

    @staticmethod
    def _reap(proc):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)

    def setUp(self):
        self.port1, self.port2 = free_port(), free_port()
        self.proc1 = self.spawn(self.port1)
        self.proc2 = self.spawn(self.port2)
        self.start_pop3fe([("be1", self.port1), ("be2", self.port2)],
                          pinned=[("pin1", "be1")], health="500ms")

    def session_on_be1(self):
        """A logged-in raw session of pin1 on be1, the back-end the tests
        kill or stop. Under a slow build (ASan) a late health check may mark
        be1 down for a moment and the login fails over to be2: log in again
        until it lands on be1."""
        for _ in range(5):
            wait_for(lambda: self.backends()["be1"]["state"] == "up", timeout=10,
                     what="be1 up")
            client = self.raw()
            client.command("USER pin1@example.test")
            self.assertEqual(client.command("PASS pin1"), "+OK Logged in.")
            if self.backends()["be1"]["sessions"] == 1:
                return client
            client.command("QUIT")
            client.close()
        self.fail("pin1's session never landed on be1")

    def test_sigkill_mid_session_and_failover(self):
        client = self.session_on_be1()
        self.assertTrue(client.command("STAT").startswith("+OK"))
        os.killpg(self.proc1.pid, signal.SIGKILL)
        self.proc1.wait()
        died = time.monotonic()
        # A new login succeeds on be2 within a second.
        new = self.login("pin1@example.test", "pin1")
        self.assertLess(time.monotonic() - died, 1.0)
        self.assertEqual(new.stat()[0], 3)
        new.quit()
        # The old session: closed (maybe with an error line), promptly.
        client.send("STAT\r\n")
        lines = expect_error_then_eof(self, client, timeout=5)
        self.assertTrue(all(l.startswith("-ERR") for l in lines), lines)
        self.assert_released()

    def test_sigstop_is_caught_by_timeouts(self):
        client = self.session_on_be1()
        os.killpg(self.proc1.pid, signal.SIGSTOP)
        self.addCleanup(lambda: os.killpg(self.proc1.pid, signal.SIGCONT))
        started = time.monotonic()
        client.send("STAT\r\n")
        lines = expect_error_then_eof(self, client, timeout=6)
        self.assertEqual(lines, ["-ERR [SYS/TEMP] back-end connection lost"])
        self.assertLess(time.monotonic() - started, 4.0)
        # The health check marks it down; new logins go to be2 at once.
        wait_for(lambda: self.backends()["be1"]["state"] == "down", timeout=5,
                 what="be1 marked down")
        started = time.monotonic()
        self.login("pin1@example.test", "pin1").quit()
        self.assertLess(time.monotonic() - started, 1.0)
        self.assert_released()


class ProxyLoop(Pop3feCase):
    """A front-end configured as its own back-end: each level announces
    the client with XCLIENT HOP=n; at max_hops the loop is refused, every
    level answers the one above, and everything is released."""

    def test_loop_is_refused(self):
        from harness import free_port as pick
        port = pick()
        self.port = port
        body = pop3fe_config(port, [("self", port)],
                             'trusted_networks = ("127.0.0.0/8"); max_hops = 3; '
                             'health_check_interval = "60s";')
        self.daemon = Posternd(self, body, name="pop3fe")
        users_file(os.path.join(self.daemon.base, "users"))
        self.daemon.start()
        self.baseline = self.settled_fds()
        client = self.raw()
        client.command("USER alice@example.test")
        reply = client.command("PASS alice")
        self.assertTrue(reply.startswith("-ERR [SYS/TEMP]"), reply)
        self.daemon.wait_log("proxy loop")
        self.assert_released()


class Reload(Pop3feCase):
    """SIGHUP with a new back-end list: it takes effect for new logins and
    no session is dropped, also on a back-end that was removed."""

    def setUp(self):
        self.be1 = self.fake(name="be1")
        self.be2 = self.fake(name="be2")

    def reload(self, backends, extra="", port=None, health="60s"):
        self.daemon.reload(pop3fe_config(
            port or self.port, backends, f'health_check_interval = "{health}"; {extra}'))

    def test_backends_added_and_removed_without_dropping_sessions(self):
        self.start_pop3fe([("be1", self.be1.port)], pinned=[("pin1", "be1"), ("pin2", "be2")])
        on_be1 = self.login("pin1@example.test", "pin1")
        client = self.raw()
        client.command("USER pin2@example.test")
        self.assertTrue(client.command("PASS pin2").startswith("-ERR [SYS/TEMP]"))

        # be2 added: its users can log in; the session on be1 goes on and
        # is still counted on be1.
        self.reload([("be1", self.be1.port), ("be2", self.be2.port)])
        self.assertEqual(set(self.backends()), {"be1", "be2"})
        self.assertEqual(self.backends()["be1"]["sessions"], 1)
        self.assertEqual(on_be1.stat()[0], 3)
        on_be2 = self.login("pin2@example.test", "pin2")
        self.assertEqual(self.be2.logins, 1)
        self.assertEqual(self.backends()["be2"]["sessions"], 1)

        # be1 removed: its session runs on until it ends; pin1 now fails.
        self.reload([("be2", self.be2.port)])
        self.daemon.wait_log("sessions on removed ones go on until they end")
        self.assertEqual(set(self.backends()), {"be2"})
        self.assertEqual(b"\r\n".join(on_be1.retr(2)[1]) + b"\r\n", message(2))
        self.assertEqual(on_be2.stat()[0], 3)
        on_be1.quit()
        self.daemon.wait_log("reload: the last session on a removed back-end ended")
        on_be2.quit()
        self.assert_released()
        client = self.raw()
        client.command("USER pin1@example.test")
        self.assertTrue(client.command("PASS pin1").startswith("-ERR [SYS/TEMP]"))
        self.assertIsNone(self.daemon.proc.poll())

    def test_health_state_is_kept_and_restart_only_keys_are_kept(self):
        self.start_pop3fe([("be1", self.be1.port), ("be2", self.be2.port)],
                          pinned=[("pin1", "be1")])
        self.be1.mode = "reset"
        self.login("pin1@example.test", "pin1").quit()  # fails over to be2
        wait_for(lambda: self.backends()["be1"]["state"] == "down", what="be1 down")
        other_port = free_port()
        self.reload([("be1", self.be1.port), ("be2", self.be2.port)], port=other_port,
                    extra='connect_timeout = "2s";')
        # A down back-end stays down until a check passes.
        self.assertEqual(self.backends()["be1"]["state"], "down")
        self.assertEqual(self.backends()["be2"]["state"], "up")
        self.daemon.wait_log("reload: listen changes only at restart; keeping the running value")
        client = self.login()     # the old port still serves
        self.assertEqual(client.stat()[0], 3)
        client.quit()
        self.assert_released()

    def test_turning_checks_off_forgets_down(self):
        self.start_pop3fe([("be1", self.be1.port), ("be2", self.be2.port)],
                          pinned=[("pin1", "be1")])
        self.be1.mode = "reset"
        self.login("pin1@example.test", "pin1").quit()  # fails over to be2
        wait_for(lambda: self.backends()["be1"]["state"] == "down", what="be1 down")
        # Without checks nothing would ever bring it back: it starts up.
        self.reload([("be1", self.be1.port), ("be2", self.be2.port)], health="0")
        self.assertEqual(self.backends()["be1"]["state"], "up")
        self.assert_released()

    def test_failed_reload_changes_nothing(self):
        """A reload the hook itself fails (a CA file that cannot be read
        passes the check, not the TLS set-up): everything stays as it was
        and what the attempt built is released (the ASan pass checks)."""
        self.start_pop3fe([("be1", self.be1.port)])
        session = self.login()
        self.daemon.write_config(pop3fe_config(
            self.port, [("be1", self.be1.port), ("be2", self.be2.port, "tls = true;")],
            'health_check_interval = "60s"; backend_tls_ca_file = "/nonexistent/ca.pem";'))
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("pop3fe: reload failed")
        self.assertIn("/nonexistent/ca.pem", self.daemon.log())
        self.assertEqual(set(self.backends()), {"be1"})
        self.assertEqual(session.stat()[0], 3)
        session.quit()
        client = self.login()
        self.assertEqual(client.stat()[0], 3)
        client.quit()
        self.assert_released()

    def test_bad_backend_list_is_refused(self):
        self.start_pop3fe([("be1", self.be1.port)])
        session = self.login()
        self.daemon.write_config(pop3fe_config(
            self.port, [("be1", self.be1.port), ("be1", self.be2.port)]))
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log("reload refused, previous configuration stays in force")
        self.assertEqual(set(self.backends()), {"be1"})
        self.assertEqual(session.stat()[0], 3)
        session.quit()
        self.assert_released()


class Control(Pop3feCase):
    def test_backends_command_and_bus(self):
        be = self.fake(name="be1")
        self.start_pop3fe([("be1", be.port, 'pool = "main"; max_sessions = 7;')],
                          extra='default_pool = "main";')
        status, out, _ = self.daemon.ctl("backends")
        self.assertEqual(status, 0)
        self.assertRegex(out, r"pop3fe be1 127\.0\.0\.1:\d+ pool=main up sessions=0/7")
        info = self.backends()["be1"]
        for key in ("module", "address", "pool", "tls", "state", "sessions", "max_sessions",
                    "total_sessions", "down_count", "since_ms", "last_error"):
            self.assertIn(key, info)
        status, out, _ = self.daemon.ctl("bus")
        self.assertIn("backend.down", out)
        self.assertIn("backend.up", out)
        self.assertIn("postern_ev_backend", out)

    def test_config_errors_name_file_and_line(self):
        cases = [
            ('backends = ( { name = "a"; address = "127.0.0.1"; } );', "name, address and port"),
            ('backends = ( { name = "a"; address = "localhost"; port = 1; } );', "numeric"),
            ('backends = ( { name = "a"; address = "127.0.0.1"; port = 1; }, '
             '{ name = "a"; address = "127.0.0.1"; port = 2; } );', "twice"),
            ('backends = ( { name = "a"; address = "127.0.0.1"; port = 1; colour = 1; } );',
             "colour"),
            ('backends = ();', "at least one"),
            ('backends = ( { name = "a"; address = "127.0.0.1"; port = 1; pool = "x"; } );',
             "default_pool"),
            ('backend_login = "magic"; backends = ( { name = "a"; address = "127.0.0.1"; '
             'port = 1; } );', "backend_login"),
        ]
        for body, expected in cases:
            daemon = Posternd(self, 'modules = ("pop3fe");\npop3fe = {\n'
                              'passwd_file = "/dev/null";\n' + body + '\n};\n')
            status, output = daemon.check()
            self.assertEqual(status, 1, body)
            self.assertIn(expected, output)
            self.assertRegex(output, r"postern\.conf:\d+", output)


class Docs(unittest.TestCase):
    """README and man page list every key of the settings tables with its
    default (the tables in lib/proxy/settings.c and the shared auth rows
    are the truth)."""

    def test_every_key_documented(self):
        from docs_util import assert_module_documented
        assert_module_documented(self, "pop3fe", [os.path.join("lib", "proxy", "settings.c")], 45)
        from harness import SRCDIR
        with open(os.path.join(SRCDIR, "modules", "pop3fe", "README.md")) as f:
            readme = f.read()
        with open(os.path.join(SRCDIR, "modules", "pop3fe", "postern-pop3fe.8")) as f:
            man = f.read()
        for topic in ("backend.down", "backend.up", "postern_ev_backend"):
            self.assertIn(topic, readme)
            self.assertIn(topic, man)


if __name__ == "__main__":
    unittest.main()
