"""pop3fe in front of real pop3be back-ends: proxied sessions with poplib
and fetchmail, the real client address passed on with XCLIENT, a mailbox
in use passed on, a back-end SIGKILLed mid-session with a second one on the
same mail storage taking over, and a front-end SIGKILLed between DELE and
QUIT (the back-end deletes nothing)."""
import os
import shutil
import signal
import socket
import subprocess
import time
import unittest

from harness import MODULE_DIRS, free_port, wait_for
from pop3fe_util import Pop3feCase, expect_error_then_eof
from pop3util import MAILDELIVER, Pop3Server, close_quietly

HAVE_POP3BE = any(os.path.exists(os.path.join(d, "pop3be.so")) for d in MODULE_DIRS)

SHARED_USERS = {"alice@example.test": "alice", "bob@example.test": "bob"}


def mail(i, size=3000):
    body = "".join(f"line {n} of message {i}\n" for n in range(size // 24))
    return (f"From: a@example.test\nTo: alice@example.test\nSubject: test {i}\n"
            f"Message-ID: <{i}@t>\n\n{body}").encode()


class Backends:
    """Two pop3be daemons sharing one mail storage, trusting the front-end."""

    def __init__(self, test, count=2, extra="", users=None):
        import tempfile
        self.store = tempfile.mkdtemp(prefix="pop3fe-store-")
        test.addCleanup(shutil.rmtree, self.store, True)
        self.servers = []
        for i in range(count):
            server = Pop3Server(test, name=f"pop3be{i + 1}", start=False,
                                extra=f'trusted_proxies = ("127.0.0.1/32"); {extra}')
            with open(server.users_file, "w") as f:
                for user, password in (users or SHARED_USERS).items():
                    local = user.split("@")[0]
                    f.write(f"{user}:{{PLAIN}}{password}::::{self.store}/{local}::"
                            f"userdb_mail=maildir:~/Maildir\n")
            server.daemon.start()
            self.servers.append(server)

    def maildir(self, user="alice@example.test"):
        return os.path.join(self.store, user.split("@")[0], "Maildir")

    def deliver(self, message, user="alice@example.test"):
        proc = subprocess.run([MAILDELIVER, "-n", self.maildir(user), "-"], input=message,
                              capture_output=True, timeout=30)
        if proc.returncode != 0:
            raise AssertionError(f"maildeliver failed: {proc.stderr!r}")

    def message_count(self, user="alice@example.test"):
        root = self.maildir(user)
        return sum(len(os.listdir(os.path.join(root, sub))) for sub in ("new", "cur")
                   if os.path.isdir(os.path.join(root, sub)))


@unittest.skipUnless(HAVE_POP3BE, "pop3be is not built")
class RealBackend(Pop3feCase):
    def setUp(self):
        self.be = Backends(self)
        for i in range(3):
            self.be.deliver(mail(i))
        be = self.be.servers
        # alice is pinned to be1 by host=be1, bob to be2.
        self.start_pop3fe([("be1", be[0].port), ("be2", be[1].port)], health="500ms",
                          users_lines=["alice@example.test:{PLAIN}alice::::::host=be1",
                                       "bob@example.test:{PLAIN}bob::::::host=be2"])

    def test_proxied_session(self):
        client = self.login("alice@example.test", "alice")
        count, size = client.stat()
        self.assertEqual(count, 3)
        for i in range(3):
            lines = client.retr(i + 1)[1]
            self.assertIn(f"Subject: test {i}".encode(), lines)
        self.assertEqual(len(client.uidl()[1]), 3)
        client.quit()
        # pop3be logged the real client, as told by XCLIENT.
        self.be.servers[0].daemon.wait_log("XCLIENT: client rip=127.0.0.1")
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
                    f'user "alice@example.test" password "alice" sslproto "" '
                    f'mda "cat >> {out}"\n')
        os.chmod(rc, 0o600)
        proc = subprocess.run(["fetchmail", "-f", rc, "--nodetach"], capture_output=True,
                              text=True, timeout=60, env=dict(os.environ, HOME=home))
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        with open(out, "rb") as f:
            data = f.read()
        for i in range(3):
            self.assertIn(f"Subject: test {i}".encode(), data)
        # Without "keep", fetchmail deleted them: through the proxy, on QUIT.
        wait_for(lambda: self.be.message_count() == 0, what="messages deleted")
        self.assert_released()

    def test_mailbox_in_use_is_passed_on(self):
        first = self.login("alice@example.test", "alice")
        first.stat()
        client = self.raw()
        client.command("USER alice@example.test")
        reply = client.command("PASS alice")
        self.assertTrue(reply.startswith("-ERR [IN-USE]"), reply)
        # Not a back-end failure: be1 stays up and be2 was not tried.
        self.assertEqual(self.backends()["be1"]["state"], "up")
        self.assertEqual(self.backends()["be2"]["total_sessions"], 0)
        first.quit()
        self.assertTrue(client.command("USER alice@example.test").startswith("+OK"))
        self.assertTrue(client.command("PASS alice").startswith("+OK"))
        client.close()
        self.assert_released()

    def test_backend_sigkill_mid_session(self):
        client = self.raw()
        client.command("USER alice@example.test")
        self.assertTrue(client.command("PASS alice").startswith("+OK"))
        self.assertTrue(client.command("STAT").startswith("+OK 3"))
        self.be.servers[0].daemon.kill()
        died = time.monotonic()
        # New logins go to be2 (same storage) within a second.
        again = self.login("alice@example.test", "alice")
        self.assertLess(time.monotonic() - died, 1.0)
        self.assertEqual(again.stat()[0], 3)
        again.quit()
        client.send("STAT\r\n")
        lines = expect_error_then_eof(self, client, timeout=5)
        self.assertTrue(all(l.startswith("-ERR") for l in lines), lines)
        self.assertEqual(self.backends()["be1"]["state"], "down")
        self.assert_released()
        # be1 comes back: alice returns to it.
        self.be.servers[0].daemon.start()
        wait_for(lambda: self.backends()["be1"]["state"] == "up", timeout=5, what="be1 up")
        before = self.backends()["be1"]["total_sessions"]
        self.login("alice@example.test", "alice").quit()
        self.assertEqual(self.backends()["be1"]["total_sessions"], before + 1)

    def test_half_close_after_dele_deletes_nothing(self):
        """A client that half-closes after DELE without QUIT: pop3be gets
        the half-close, answers, and deletes nothing (no UPDATE state)."""
        client = self.raw()
        client.send("USER alice@example.test\r\nPASS alice\r\nDELE 1\r\nSTAT\r\n")
        client.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(client.line(), "+OK")
        self.assertTrue(client.line().startswith("+OK"))     # logged in
        self.assertTrue(client.line().startswith("+OK"))     # DELE 1
        self.assertTrue(client.line().startswith("+OK 2 "))  # STAT
        self.assertTrue(client.at_eof())
        self.assert_released()
        self.assertEqual(self.be.message_count(), 3)

    def test_frontend_killed_after_dele(self):
        client = self.raw()
        client.command("USER alice@example.test")
        self.assertTrue(client.command("PASS alice").startswith("+OK"))
        for i in (1, 2, 3):
            self.assertTrue(client.command(f"DELE {i}").startswith("+OK"))
        self.daemon.kill()
        self.assertTrue(client.at_eof())
        # pop3be saw the connection go without QUIT: nothing deleted.
        time.sleep(0.5)
        self.assertEqual(self.be.message_count(), 3)
        direct = self.be.servers[0].pop("alice@example.test", "alice")
        self.assertEqual(direct.stat()[0], 3)
        direct.quit()


@unittest.skipUnless(HAVE_POP3BE, "pop3be is not built")
class TlsBackend(Pop3feCase):
    """TLS from the front-end to the back-end (tls = true), verified."""

    def test_tls_backend(self):
        self.be = Backends(self, count=1)
        self.be.deliver(mail(1))
        server = self.be.servers[0]
        self.start_pop3fe([("be1", server.tls_port,
                            'tls = true; tls_server_name = "localhost";')],
                          extra=f'backend_tls_ca_file = "{server.cert}";',
                          users_lines=["alice@example.test:{PLAIN}alice"])
        client = self.login("alice@example.test", "alice")
        self.assertEqual(client.stat()[0], 1)
        self.assertTrue(any(s.get("tls") for s in self.sessions() if s["outgoing"]),
                        self.sessions())
        client.quit()
        self.assert_released()

    def test_half_close_over_tls_backend(self):
        """The client half-closes after DELE without QUIT; pop3fe passes
        it on over the TLS leg (close_notify, then FIN): pop3be still
        answers what was pipelined, the client gets every answer and EOF,
        nothing is deleted and the session's resources are released."""
        self.be = Backends(self, count=1)
        for i in range(3):
            self.be.deliver(mail(i))
        server = self.be.servers[0]
        self.start_pop3fe([("be1", server.tls_port,
                            'tls = true; tls_server_name = "localhost";')],
                          extra=f'backend_tls_ca_file = "{server.cert}";',
                          users_lines=["alice@example.test:{PLAIN}alice"])
        client = self.raw()
        client.send("USER alice@example.test\r\nPASS alice\r\nDELE 1\r\nRETR 2\r\n")
        client.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(client.line(), "+OK")
        self.assertTrue(client.line().startswith("+OK"))     # logged in
        self.assertTrue(client.line().startswith("+OK"))     # DELE 1
        self.assertTrue(client.line().startswith("+OK"))     # RETR 2
        body = []
        while (line := client.line()) != ".":
            body.append(line)
        self.assertIn("Subject: test 1", body)
        self.assertTrue(client.at_eof())
        self.assert_released()
        self.assertEqual(self.be.message_count(), 3)
        # pop3be saw a clean end of the TLS session, not a reset or an error.
        session = server.daemon.log().split("login: user=<alice", 1)[1]
        self.assertIn("peer closed", session)
        self.assertIn("disconnected without QUIT: 1 deletions not applied", session)
        self.assertNotRegex(session, r"error|reset|TLS:", session)

    def test_unverified_backend_is_refused(self):
        self.be = Backends(self, count=1)
        server = self.be.servers[0]
        # No CA for the self-signed certificate: the handshake fails.
        self.start_pop3fe([("be1", server.tls_port, 'tls = true; tls_server_name = "localhost";')],
                          users_lines=["alice@example.test:{PLAIN}alice"])
        client = self.raw()
        client.command("USER alice@example.test")
        self.assertTrue(client.command("PASS alice").startswith("-ERR [SYS/TEMP]"))
        self.assertIn("TLS", self.backends()["be1"]["last_error"] or "")
        self.assert_released()


if __name__ == "__main__":
    unittest.main()
