"""pop3be: every command in every state, with python's poplib and by hand.
RETR bytes are compared exactly with what the mailstore delivered."""
import base64
import os
import poplib
import unittest

from harness import wait_for
from pop3util import Pop3Server, crlf_form, multiline, retr_bytes

poplib._MAXLINE = 1 << 20  # our test messages have long lines

MESSAGES = [
    b"From: a@example.test\nSubject: one\n\nfirst body\n",
    b"From: b@example.test\r\nSubject: two\r\n\r\nCRLF body\r\n.starts with dot\r\n..two dots\r\n",
    b"Subject: three\n\n.\n..\n.x\nno final newline",
    b"Subject: four\n\nbare\rCR inside\nline\n" + b"x" * 5000 + b"\n",
]


def expected_retr(message):
    data = crlf_form(message)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class Pop3TestCase(unittest.TestCase):
    def setUp(self):
        self.server = Pop3Server(self)


class Basics(Pop3TestCase):
    def test_greeting_and_capa_before_login(self):
        client = poplib.POP3("127.0.0.1", self.server.port, timeout=10)
        self.addCleanup(client.close)
        self.assertTrue(client.getwelcome().startswith(b"+OK "))
        capa = client.capa()
        for name in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER",
                     "STLS", "SASL"):
            self.assertIn(name, capa)
        self.assertEqual(capa["SASL"], ["PLAIN"])
        self.assertNotIn("XCLIENT", capa)  # not a trusted peer
        client.quit()

    def test_capa_in_transaction_has_no_login_capabilities(self):
        client = self.server.pop()
        capa = client.capa()
        self.assertIn("UIDL", capa)
        for name in ("USER", "SASL", "STLS"):
            self.assertNotIn(name, capa)
        client.quit()

    def test_stat_list_uidl_retr_exact_bytes(self):
        for message in MESSAGES:
            self.server.deliver(message)
        client = self.server.pop()
        count, size = client.stat()
        self.assertEqual(count, len(MESSAGES))
        self.assertEqual(size, sum(len(crlf_form(m)) for m in MESSAGES))
        resp, listing, _ = client.list()
        sizes = [int(line.split()[1]) for line in listing]
        self.assertEqual(sizes, [len(crlf_form(m)) for m in MESSAGES])
        resp, uidls, _ = client.uidl()
        ids = [line.split()[1] for line in uidls]
        self.assertEqual(len(set(ids)), len(MESSAGES))
        for i, message in enumerate(MESSAGES, 1):
            data, octets = retr_bytes(client, i)
            expected = crlf_form(message)
            if not expected.endswith(b"\r\n"):
                expected += b"\r\n"  # the line end a POP3 answer must add
            self.assertEqual(data, expected)
            self.assertEqual(client.list(i).split()[2], str(len(crlf_form(message))).encode())
            self.assertEqual(client.uidl(i).split()[2], ids[i - 1])
        client.quit()

    def test_raw_stuffing_on_the_wire(self):
        self.server.deliver(b"Subject: dots\n\n.\n.x\n..\nend\n")
        client = self.server.line_client()
        self.assertTrue(client.command("USER alice@example.test").startswith("+OK"))
        self.assertTrue(client.command("PASS alice").startswith("+OK"))
        self.assertEqual(client.command("RETR 1"), "+OK %d octets" % len(
            crlf_form(b"Subject: dots\n\n.\n.x\n..\nend\n")))
        self.assertEqual(multiline(client), ["Subject: dots", "", "..", "..x", "...", "end"])
        self.assertTrue(client.command("QUIT").startswith("+OK"))

    def test_top(self):
        self.server.deliver(b"A: 1\nB: 2\n\nl1\n.l2\nl3\nl4\n")
        client = self.server.pop()
        resp, lines, _ = client.top(1, 0)
        self.assertEqual(lines, [b"A: 1", b"B: 2", b""])
        resp, lines, _ = client.top(1, 2)
        self.assertEqual(lines, [b"A: 1", b"B: 2", b"", b"l1", b".l2"])
        resp, lines, _ = client.top(1, 99)
        self.assertEqual(lines[-1], b"l4")
        with self.assertRaises(poplib.error_proto):
            client.top(2, 0)
        with self.assertRaises(poplib.error_proto):
            client._shortcmd("TOP 1 x")
        client.quit()

    def test_dele_rset_quit(self):
        for message in MESSAGES[:3]:
            self.server.deliver(message)
        client = self.server.pop()
        resp, uidls, _ = client.uidl()
        client.dele(2)
        self.assertEqual(client.stat(), (2, sum(len(crlf_form(m)) for m in (MESSAGES[0], MESSAGES[2]))))
        with self.assertRaises(poplib.error_proto) as cm:
            client.retr(2)
        self.assertIn(b"deleted", cm.exception.args[0])
        with self.assertRaises(poplib.error_proto):
            client.dele(2)
        self.assertEqual(len(client.list()[1]), 2)
        client.rset()
        self.assertEqual(client.stat()[0], 3)
        client.dele(1)
        client.dele(3)
        self.assertTrue(client.quit().startswith(b"+OK"))
        # the next session: only message 2 is left, with the same UIDL
        client = self.server.pop()
        self.assertEqual(client.stat()[0], 1)
        self.assertEqual(client.uidl()[1][0].split()[1], uidls[1].split()[1])
        data, _ = retr_bytes(client, 1)
        self.assertEqual(data, crlf_form(MESSAGES[1]))
        client.quit()
        self.assertEqual(len(os.listdir(os.path.join(self.server.maildir(), "cur"))), 1)

    def test_retrieved_messages_are_marked_seen_at_quit(self):
        self.server.deliver(MESSAGES[0])
        self.server.deliver(MESSAGES[1])
        client = self.server.pop()
        client.retr(2)
        client.quit()
        names = sorted(os.listdir(os.path.join(self.server.maildir(), "cur")))
        self.assertEqual(len(names), 2)
        self.assertEqual(sum(1 for n in names if n.endswith(":2,S")), 1)
        self.assertEqual(os.listdir(os.path.join(self.server.maildir(), "new")), [])

    def test_noop_and_message_numbers(self):
        self.server.deliver(MESSAGES[0])
        client = self.server.pop()
        self.assertTrue(client.noop().startswith(b"+OK"))
        for bad in ("0", "2", "-1", "1x", "99999999999999999999"):
            with self.assertRaises(poplib.error_proto):
                client.list(bad)
            with self.assertRaises(poplib.error_proto):
                client.retr(bad)
        client.quit()

    def test_empty_mailbox_is_created(self):
        client = self.server.pop("bob@example.test")
        self.assertEqual(client.stat(), (0, 0))
        self.assertEqual(client.list()[1], [])
        self.assertEqual(client.uidl()[1], [])
        client.quit()
        self.assertTrue(os.path.isdir(os.path.join(self.server.maildir("bob@example.test"), "cur")))

    def test_password_with_spaces(self):
        client = self.server.pop("carol@example.test")
        self.assertEqual(client.stat(), (0, 0))
        client.quit()


class Auth(Pop3TestCase):
    def test_auth_plain_initial_response(self):
        client = self.server.line_client()
        token = base64.b64encode(b"\0alice@example.test\0alice").decode()
        self.assertTrue(client.command(f"AUTH PLAIN {token}").startswith("+OK"))
        self.assertTrue(client.command("STAT").startswith("+OK 0 0"))
        self.assertTrue(client.command("QUIT").startswith("+OK"))
        self.server.daemon.wait_log("method=PLAIN")

    def test_auth_plain_continuation(self):
        client = self.server.line_client()
        self.assertEqual(client.command("AUTH PLAIN"), "+ ")
        token = base64.b64encode(b"alice@example.test\0alice@example.test\0alice").decode()
        self.assertTrue(client.command(token).startswith("+OK"))
        self.assertTrue(client.command("STAT").startswith("+OK"))

    def test_auth_cancel_and_broken_base64(self):
        client = self.server.line_client()
        self.assertEqual(client.command("AUTH PLAIN"), "+ ")
        self.assertTrue(client.command("*").startswith("-ERR"))
        self.assertEqual(client.command("AUTH PLAIN"), "+ ")
        self.assertTrue(client.command("!!!notbase64").startswith("-ERR"))
        self.assertTrue(client.command("AUTH PLAIN %%%").startswith("-ERR"))
        self.assertTrue(client.command("AUTH PLAIN =").startswith("-ERR"))
        # acting as another user is refused
        token = base64.b64encode(b"bob@example.test\0alice@example.test\0alice").decode()
        self.assertTrue(client.command(f"AUTH PLAIN {token}").startswith("-ERR [AUTH]"))
        self.assertTrue(client.command("AUTH CRAM-MD5").startswith("-ERR"))
        self.assertEqual(client.command("AUTH"), "+OK")
        self.assertEqual(multiline(client), ["PLAIN"])
        # still usable
        token = base64.b64encode(b"\0alice@example.test\0alice").decode()
        self.assertTrue(client.command(f"AUTH PLAIN {token}").startswith("+OK"))

    def test_wrong_password_and_unknown_user_look_the_same(self):
        client = self.server.line_client()
        self.assertTrue(client.command("USER alice@example.test").startswith("+OK"))
        wrong = client.command("PASS nope")
        self.assertTrue(client.command("USER nobody@example.test").startswith("+OK"))
        unknown = client.command("PASS nope")
        self.assertEqual(wrong, "-ERR [AUTH] Authentication failed")
        self.assertEqual(unknown, wrong)
        log = self.server.log()
        self.assertRegex(log, r"login failed: user=<alice@example.test> method=USER rip=127\.0\.0\.1")
        self.assertNotIn("nope", log)

    def test_pass_without_user_and_wrong_states(self):
        client = self.server.line_client()
        self.assertTrue(client.command("PASS alice").startswith("-ERR"))
        for cmd in ("STAT", "LIST", "UIDL", "RETR 1", "TOP 1 1", "DELE 1", "RSET", "NOOP"):
            reply = client.command(cmd)
            self.assertTrue(reply.startswith("-ERR") and "AUTHORIZATION" in reply, (cmd, reply))
        self.assertTrue(client.command("USER alice@example.test").startswith("+OK"))
        self.assertTrue(client.command("PASS alice").startswith("+OK"))
        for cmd in ("USER x", "PASS x", "AUTH PLAIN", "STLS", "XCLIENT ADDR=1.2.3.4"):
            reply = client.command(cmd)
            self.assertTrue(reply.startswith("-ERR") and "TRANSACTION" in reply, (cmd, reply))
        self.assertTrue(client.command("QUIT").startswith("+OK"))
        self.assertTrue(client.at_eof())

    def test_quit_in_authorization(self):
        client = self.server.line_client()
        self.assertTrue(client.command("QUIT").startswith("+OK"))
        self.assertTrue(client.at_eof())

    def test_too_many_failures_close_the_connection(self):
        client = self.server.line_client()
        for _ in range(3):
            client.command("USER alice@example.test")
            reply = client.command("PASS wrong")
            self.assertTrue(reply.startswith("-ERR"), reply)
        self.assertTrue(client.at_eof())

    def test_plaintext_refused_before_tls_on_strict_listener(self):
        client = self.server.line_client(self.server.strict_port)
        self.assertTrue(client.command("USER alice@example.test").startswith("-ERR [AUTH]"))
        token = base64.b64encode(b"\0alice@example.test\0alice").decode()
        self.assertTrue(client.command(f"AUTH PLAIN {token}").startswith("-ERR [AUTH]"))
        self.assertEqual(client.command("CAPA"), "+OK Capability list follows")
        capa = multiline(client)
        self.assertIn("STLS", capa)
        self.assertNotIn("USER", capa)
        self.assertFalse(any(c.startswith("SASL") for c in capa))

    def test_stls_then_login(self):
        client = poplib.POP3("127.0.0.1", self.server.strict_port, timeout=10)
        self.addCleanup(client.close)
        client.stls(self.server.tls_context())
        self.assertIn("USER", client.capa())
        self.assertNotIn("STLS", client.capa())
        client.user("alice@example.test")
        client.pass_("alice")
        self.assertEqual(client.stat(), (0, 0))
        client.quit()
        self.server.daemon.wait_log("tls")

    def test_implicit_tls(self):
        client = poplib.POP3_SSL("127.0.0.1", self.server.tls_port,
                                 context=self.server.tls_context(), timeout=10)
        self.addCleanup(client.close)
        self.assertNotIn("STLS", client.capa())
        client.user("alice@example.test")
        client.pass_("alice")
        client.quit()


class InUse(Pop3TestCase):
    def test_second_session_gets_in_use(self):
        self.server.deliver(MESSAGES[0])
        first = self.server.pop()
        with self.assertRaises(poplib.error_proto) as cm:
            self.server.pop()
        self.assertIn(b"[IN-USE]", cm.exception.args[0])
        first.quit()
        second = self.server.pop()
        self.assertEqual(second.stat()[0], 1)
        second.quit()

    def test_two_daemons_on_one_storage(self):
        """Two posternd with pop3be serving the same Maildirs (as pop3fe's
        fail-over runs them): one session per mailbox across both, and the
        lock dies with the process that held it (kill -9)."""
        self.server.deliver(MESSAGES[0])
        other = Pop3Server(self, start=False, name="pop3be-b")
        with open(self.server.users_file) as src, open(other.users_file, "w") as dst:
            dst.write(src.read())
        other.daemon.start()
        first = self.server.pop()
        self.assertEqual(first.stat()[0], 1)
        with self.assertRaises(poplib.error_proto) as cm:
            other.pop()
        self.assertIn(b"[IN-USE]", cm.exception.args[0])
        self.server.daemon.kill()
        second = other.pop()
        self.assertEqual(second.stat()[0], 1)
        with self.assertRaises(poplib.error_proto):
            other.pop()
        second.dele(1)
        second.quit()
        self.assertEqual(os.listdir(os.path.join(self.server.maildir(), "cur")), [])

    def test_lock_released_when_client_vanishes(self):
        first = self.server.pop()
        first.close()  # no QUIT
        wait_for(lambda: self._can_login(), timeout=10, what="lock released")

    def _can_login(self):
        try:
            client = self.server.pop()
        except poplib.error_proto:
            return False
        client.quit()
        return True


class Snapshot(Pop3TestCase):
    def test_delivery_during_session_appears_next_time(self):
        self.server.deliver(MESSAGES[0])
        client = self.server.pop()
        uidl_before = client.uidl()[1]
        self.server.deliver(MESSAGES[1])
        self.assertEqual(client.stat()[0], 1)
        self.assertEqual(client.uidl()[1], uidl_before)
        with self.assertRaises(poplib.error_proto):
            client.retr(2)
        client.dele(1)
        client.quit()
        client = self.server.pop()
        self.assertEqual(client.stat()[0], 1)
        data, _ = retr_bytes(client, 1)
        self.assertEqual(data, crlf_form(MESSAGES[1]))
        self.assertNotIn(client.uidl()[1][0].split()[1], [u.split()[1] for u in uidl_before])
        client.quit()

    def test_files_renamed_or_removed_by_others_during_session(self):
        for message in MESSAGES[:3]:
            self.server.deliver(message)
        client = self.server.pop()
        cur = os.path.join(self.server.maildir(), "cur")
        names = [self._file_holding(cur, message) for message in MESSAGES[:2]]
        # an IMAP client flags message 1 and expunges message 2
        os.rename(os.path.join(cur, names[0]), os.path.join(cur, names[0].split(":")[0] + ":2,F"))
        os.unlink(os.path.join(cur, names[1]))
        data, _ = retr_bytes(client, 1)
        self.assertEqual(data, crlf_form(MESSAGES[0]))
        with self.assertRaises(poplib.error_proto) as cm:
            client.retr(2)
        self.assertIn(b"removed", cm.exception.args[0])
        client.dele(2)
        client.dele(1)
        self.assertTrue(client.quit().startswith(b"+OK"))
        client = self.server.pop()
        self.assertEqual(client.stat()[0], 1)
        self.assertEqual(retr_bytes(client, 1)[0], expected_retr(MESSAGES[2]))
        client.quit()

    @staticmethod
    def _file_holding(folder, message):
        """The name of the file in `folder` that holds `message` (file names
        do not sort in delivery order)."""
        for name in os.listdir(folder):
            with open(os.path.join(folder, name), "rb") as f:
                if f.read().replace(b"\r\n", b"\n") == message.replace(b"\r\n", b"\n"):
                    return name
        raise AssertionError(f"no file in {folder} holds {message[:40]!r}")

    def test_uidls_stable_across_restart(self):
        for message in MESSAGES:
            self.server.deliver(message)
        client = self.server.pop()
        before = client.uidl()[1]
        client.quit()
        self.server.daemon.stop()
        self.server.daemon.start()
        self.server.deliver(b"Subject: new\n\nnew\n")
        client = self.server.pop()
        after = client.uidl()[1]
        self.assertEqual(after[:len(before)], before)
        self.assertEqual(len(after), len(before) + 1)
        client.quit()


class Shutdown(Pop3TestCase):
    def test_graceful_stop_with_open_sessions(self):
        import fcntl
        self.server.deliver(MESSAGES[0])
        busy = self.server.pop()
        busy.dele(1)
        idle = self.server.line_client()
        self.assertEqual(self.server.daemon.stop(), 0)
        self.assertEqual(idle.line(), "-ERR [SYS/TEMP] Server shutting down")
        self.assertTrue(idle.at_eof())
        # the lock went with the process, and nothing was deleted
        with open(os.path.join(self.server.maildir(), "postern-pop3-session"), "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.assertEqual(len(os.listdir(os.path.join(self.server.maildir(), "cur"))), 1)


class Reload(Pop3TestCase):
    def test_session_settings_apply_at_once_the_rest_at_restart(self):
        self.server.deliver(b"Subject: one\n\nbody\n")
        session = self.server.pop()
        self.server.reload('greeting = "reloaded POP3"; flag_updates = false;',
                           listeners_extra="max_per_ip = 5;")
        # The open session goes on.
        self.assertEqual(session.stat()[0], 1)
        # The greeting is for new connections; what a restart changes is
        # kept, with a warning naming it.
        client = poplib.POP3("127.0.0.1", self.server.port, timeout=10)
        self.addCleanup(client.close)
        self.assertEqual(client.getwelcome(), b"+OK reloaded POP3")
        client.quit()
        for key in ("flag_updates", "listeners"):
            self.server.daemon.wait_log(
                f"reload: {key} changes only at restart; keeping the running value")
        self.assertNotIn("greeting changes only at restart", self.server.daemon.log())
        session.quit()


class Config(unittest.TestCase):
    def check(self, group):
        from harness import Posternd
        daemon = Posternd(self, 'modules = ("pop3be");\npop3be = {\n' + group + '\n};\n')
        return daemon.check()

    def test_errors_name_file_and_line(self):
        users = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "dev-users")
        base = f'passwd_file = "{users}";'
        status, out = self.check(base + ' listeners = ( { address = "127.0.0.1:0"; } );')
        self.assertEqual(status, 0, out)
        for group, text in (
                ('listeners = ( { address = "127.0.0.1:0"; } );', "passwd_file is required"),
                (base + ' listeners = ( { port = 1; } );', "port"),
                (base + ' listeners = ( { implicit_tls = true; address = "127.0.0.1:0"; } );',
                 "cert_file is not set"),
                (base + ' trusted_proxies = ("10.0.0.0/33");', "bad address or CIDR"),
                (base + ' listeners = { address = "x"; };', "list of groups"),
                (base + ' max_line = 10;', "max_line"),
                (base + ' cert_file = "/x";', "go together"),
                (base + ' mailbox_thread = 3;', "mailbox_threads")):
            status, out = self.check(group)
            self.assertNotEqual(status, 0, group)
            self.assertIn(text, out, group)
            if "passwd_file" not in text and "together" not in text:
                self.assertRegex(out, r"postern\.conf:\d+: ", group)


class Control(Pop3TestCase):
    def test_sessions_and_stats(self):
        client = self.server.pop()
        status, out, err = self.server.daemon.ctl("pop3be", "sessions")
        self.assertEqual(status, 0, err)
        self.assertIn("alice@example.test", out)
        self.assertIn("TRANSACTION", out)
        status, out, err = self.server.daemon.ctl("--json", "pop3be", "sessions")
        self.assertEqual(status, 0, err)
        self.assertIn('"user":"alice@example.test"', out.replace(" ", ""))
        client.quit()
        status, out, err = self.server.daemon.ctl("pop3be", "stats")
        self.assertEqual(status, 0, err)
        self.assertRegex(out, r"logins 1\b")
        status, out, err = self.server.daemon.ctl("pop3be", "bogus")
        self.assertNotEqual(status, 0)


class Docs(unittest.TestCase):
    """The README and the man page list every key of the settings table
    with its default (the C table, with the shared auth rows, is the truth)."""

    def test_every_key_documented(self):
        from docs_util import assert_module_documented
        assert_module_documented(self, "pop3be", [os.path.join("modules", "pop3be", "settings.c")], 30)


if __name__ == "__main__":
    unittest.main()
