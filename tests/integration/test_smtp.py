"""smtp module, inbound: every command and extension with python's smtplib
and swaks, delivered through the real queue-store into Maildir; policy
(no open relay, unknown users, AUTH, submission)."""
import base64
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
import unittest

from harness import BUILDDIR, Posternd, free_port, wait_for
from smtputil import SmtpServer, ehlo, read_reply, tls_wrap

MESSAGE = (b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: hello\r\n"
           b"Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\n"
           b"first line\r\n.leading dot\r\n..two dots\r\nlast line\r\n")


def unverified_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def body_of(stored):
    """The message as the client sent it (CR LF line ends), from its Maildir
    file: the delivery headers and our Received header removed, Maildir's
    LF line ends turned back into CR LF."""
    lines = stored.split(b"\n")
    while lines and lines[0].split(b":")[0] in (b"Return-Path", b"Delivered-To"):
        lines.pop(0)
    assert lines[0].startswith(b"Received: from "), stored[:300]
    lines.pop(0)
    while lines and lines[0].startswith(b"\t"):
        lines.pop(0)
    return b"\r\n".join(lines)


class SmtpTestCase(unittest.TestCase):
    smtp_extra = ""

    def setUp(self):
        self.server = SmtpServer(self, smtp_extra=self.smtp_extra)

    def smtp(self, port=None):
        client = smtplib.SMTP("127.0.0.1", port or self.server.port, timeout=10)
        self.addCleanup(client.close)
        return client


class Basics(SmtpTestCase):
    def test_ehlo_capabilities(self):
        client = self.smtp()
        code, text = client.ehlo("client.example")
        self.assertEqual(code, 250)
        self.assertTrue(text.startswith(b"mx.example.test"))
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "starttls",
                    "dsn", "smtputf8", "chunking"):
            self.assertTrue(client.has_extn(ext), ext)
        self.assertEqual(client.esmtp_features["size"], str(25 * 1024 * 1024))
        # AUTH only after TLS.
        self.assertFalse(client.has_extn("auth"))
        client.starttls(context=unverified_context())
        client.ehlo("client.example")
        self.assertFalse(client.has_extn("starttls"))
        self.assertEqual(client.esmtp_features["auth"].split(), ["PLAIN", "LOGIN"])
        client.quit()

    def test_local_delivery_exact_bytes(self):
        client = self.smtp()
        refused = client.sendmail("bob@example.test", ["alice@example.test"], MESSAGE)
        self.assertEqual(refused, {})
        client.quit()
        stored = self.server.wait_messages(1)[0]
        self.assertEqual(body_of(stored), MESSAGE)
        received = stored[:stored.index(b"\nFrom:")].decode()
        self.assertIn(" ([127.0.0.1])\n", received)
        self.assertIn("by mx.example.test (Postern) with ESMTP", received)
        self.assertIn("for <alice@example.test>;", received)

    def test_helo_and_simple_commands(self):
        client = self.server.client()
        self.assertEqual(client.command("HELO client.example"), "250 mx.example.test")
        self.assertEqual(client.command("NOOP"), "250 2.0.0 Ok")
        self.assertTrue(client.command("VRFY alice").startswith("252 2.5.2"))
        self.assertTrue(client.command("EXPN list").startswith("502 5.5.1"))
        self.assertTrue(client.command("HELP").startswith("214 "))
        self.assertEqual(client.command("RSET"), "250 2.0.0 Ok")
        # HELO: no ESMTP parameters.
        self.assertTrue(client.command("MAIL FROM:<a@example.test> SIZE=10").startswith("555"))
        self.assertEqual(client.command("MAIL FROM:<a@example.test>"), "250 2.1.0 Ok")
        self.assertTrue(client.command("QUIT").startswith("221 2.0.0"))
        self.assertTrue(client.at_eof())

    def test_sequence_errors(self):
        client = self.server.client()
        self.assertTrue(client.command("MAIL FROM:<a@b.test>").startswith("503 5.5.1"))
        ehlo(client)
        self.assertTrue(client.command("RCPT TO:<alice@example.test>").startswith("503 5.5.1"))
        self.assertTrue(client.command("DATA").startswith("503 5.5.1"))
        self.assertEqual(client.command("MAIL FROM:<>"), "250 2.1.0 Ok")
        self.assertTrue(client.command("MAIL FROM:<>").startswith("503 5.5.1"))
        self.assertTrue(client.command("DATA").startswith("554 5.5.1"))
        self.assertTrue(client.command("FOO bar").startswith("500 5.5.1"))
        self.assertTrue(client.command("HELO bad..name").startswith("501 5.5.4"))

    def test_unknown_local_user_and_tempfail(self):
        client = self.server.client()
        ehlo(client)
        client.command("MAIL FROM:<bob@example.test>")
        self.assertTrue(client.command("RCPT TO:<nobody@example.test>").startswith("550 5.1.1"))
        self.assertEqual(client.command("RCPT TO:<alice@example.test>"), "250 2.1.5 Ok")

    def test_dsn_smtputf8_parameters(self):
        client = self.server.client()
        ehlo(client)
        self.assertEqual(client.command("MAIL FROM:<bob@example.test> RET=HDRS ENVID=QQ+2B1 "
                                        "BODY=8BITMIME SMTPUTF8 SIZE=100"), "250 2.1.0 Ok")
        self.assertEqual(client.command("RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE "
                                        "ORCPT=rfc822;alice+2Bx@example.test"), "250 2.1.5 Ok")
        self.assertTrue(client.command("DATA").startswith("354"))
        client.send("Subject: utf8 \xe2\x82\xac\r\n\r\nbody\r\n.\r\n")
        self.assertTrue(client.line().startswith("250 2.0.0 Ok: queued as "))
        stored = self.server.wait_messages(1)[0]
        self.assertIn(b"with UTF8SMTP", stored)

    def test_smtputf8_address_needs_parameter(self):
        client = self.server.client()
        ehlo(client)
        self.assertTrue(client.command("MAIL FROM:<j\u00f6rg@example.test>")
                        .startswith("553 5.6.7"))
        self.assertEqual(client.command("MAIL FROM:<j\u00f6rg@example.test> SMTPUTF8"),
                         "250 2.1.0 Ok")

    def test_pipelining(self):
        client = self.server.client()
        ehlo(client)
        client.send("MAIL FROM:<bob@example.test>\r\nRCPT TO:<alice@example.test>\r\n"
                    "RCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        self.assertEqual(client.line(), "250 2.1.0 Ok")
        self.assertEqual(client.line(), "250 2.1.5 Ok")
        self.assertTrue(client.line().startswith("550 5.1.1"))
        self.assertEqual(client.line(), "250 2.1.5 Ok")
        self.assertTrue(client.line().startswith("354 "))
        # The final dot and the next commands in one packet.
        client.send("Subject: p\r\n\r\nx\r\n.\r\nMAIL FROM:<bob@example.test>\r\n"
                    "RCPT TO:<alice@example.test>\r\nRSET\r\nQUIT\r\n")
        self.assertTrue(client.line().startswith("250 2.0.0 Ok: queued as"))
        self.assertEqual(client.line(), "250 2.1.0 Ok")
        self.assertEqual(client.line(), "250 2.1.5 Ok")
        self.assertEqual(client.line(), "250 2.0.0 Ok")
        self.assertTrue(client.line().startswith("221 "))
        self.server.wait_messages(1, "alice")
        self.server.wait_messages(1, "bob")

    def test_chunking_bdat(self):
        client = self.server.client()
        ehlo(client)
        part1 = b"Subject: chunked\r\n\r\n.not stuffed\r\n"
        part2 = b"second\r\n.\r\nstill text\r\n"
        client.send("MAIL FROM:<bob@example.test>\r\nRCPT TO:<alice@example.test>\r\n")
        client.send(b"BDAT %d\r\n" % len(part1) + part1)
        client.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        self.assertEqual(client.line(), "250 2.1.0 Ok")
        self.assertEqual(client.line(), "250 2.1.5 Ok")
        self.assertEqual(client.line(), f"250 2.0.0 Ok: {len(part1)} octets")
        self.assertTrue(client.line().startswith("250 2.0.0 Ok: queued as"))
        stored = self.server.wait_messages(1)[0]
        self.assertEqual(body_of(stored), part1 + part2)

    def test_bdat_refused_chunk_is_read_not_executed(self):
        client = self.server.client()
        ehlo(client)
        chunk = b"RSET\r\nMAIL FROM:<evil@x.test>\r\n"
        client.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk + b"NOOP\r\n")
        self.assertTrue(client.line().startswith("503 5.5.1"))
        self.assertEqual(client.line(), "250 2.0.0 Ok")  # NOOP, not the chunk's commands

    def test_bdat_zero_last_and_data_after_bdat(self):
        client = self.server.client()
        ehlo(client)
        client.command("MAIL FROM:<bob@example.test>")
        client.command("RCPT TO:<alice@example.test>")
        client.send(b"BDAT 9\r\nSubject:x")
        self.assertTrue(client.line().startswith("250 2.0.0 Ok: 9 octets"))
        self.assertTrue(client.command("DATA").startswith("503 5.5.1"))
        self.assertTrue(client.command("BDAT 0 LAST").startswith("250 2.0.0 Ok: queued"))
        stored = self.server.wait_messages(1)[0]
        self.assertEqual(body_of(stored), b"Subject:x\r\n")

    def test_swaks(self):
        if shutil.which("swaks") is None:
            self.skipTest("swaks not installed")
        proc = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.server.port}",
                               "--from", "bob@example.test", "--to", "alice@example.test",
                               "--helo", "swaks.example", "--pipeline",
                               "--header", "Subject: from swaks", "--body", "swaks body"],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        stored = self.server.wait_messages(1)[0]
        self.assertIn(b"Subject: from swaks", stored)
        self.assertIn(b"swaks body", stored)


class Limits(SmtpTestCase):
    smtp_extra = ('max_recipients = 3; max_message_size = "2k"; max_hops = 5; '
                  'max_text_line = 100;')

    def test_size_announced_and_enforced(self):
        client = self.server.client()
        lines = ehlo(client)
        self.assertIn("250-SIZE 2048", lines)
        self.assertTrue(client.command("MAIL FROM:<b@example.test> SIZE=4000")
                        .startswith("552 5.3.4"))
        client.command("MAIL FROM:<bob@example.test>")
        client.command("RCPT TO:<alice@example.test>")
        client.command("DATA")
        client.send("Subject: big\r\n\r\n" + ("x" * 60 + "\r\n") * 50 + ".\r\n")
        self.assertTrue(client.line().startswith("552 5.3.4"))
        self.assertEqual(client.command("NOOP"), "250 2.0.0 Ok")
        time.sleep(0.3)
        self.assertEqual(self.server.messages(), [])

    def test_max_recipients(self):
        client = self.server.client()
        ehlo(client)
        client.command("MAIL FROM:<bob@example.test>")
        for _ in range(3):
            self.assertEqual(client.command("RCPT TO:<alice@example.test>"), "250 2.1.5 Ok")
        self.assertTrue(client.command("RCPT TO:<alice@example.test>").startswith("452 4.5.3"))

    def test_overlong_text_line_rejects_message(self):
        client = self.server.client()
        ehlo(client)
        client.command("MAIL FROM:<bob@example.test>")
        client.command("RCPT TO:<alice@example.test>")
        client.command("DATA")
        client.send("Subject: long\r\n\r\n" + "y" * 99 + "\r\n.\r\n")
        self.assertTrue(client.line().startswith("500 5.5.2"))
        time.sleep(0.3)
        self.assertEqual(self.server.messages(), [])

    def test_hop_count(self):
        client = self.server.client()
        ehlo(client)
        for hops, ok in ((5, True), (6, False)):
            client.command("MAIL FROM:<bob@example.test>")
            client.command("RCPT TO:<alice@example.test>")
            client.command("DATA")
            client.send("Received: from x by y; Thu, 1 Jan 2026 00:00:00 +0000\r\n" * hops +
                        "Subject: hops\r\n\r\nbody\r\n.\r\n")
            reply = client.line()
            if ok:
                self.assertTrue(reply.startswith("250 "), reply)
            else:
                self.assertTrue(reply.startswith("554 5.4.6"), reply)
        self.assertEqual(len(self.server.wait_messages(1)), 1)


class BadInput(SmtpTestCase):
    smtp_extra = 'max_errors = 50;'

    def data_session(self, client):
        ehlo(client)
        self.assertEqual(client.command("MAIL FROM:<bob@example.test>"), "250 2.1.0 Ok")
        self.assertEqual(client.command("RCPT TO:<alice@example.test>"), "250 2.1.5 Ok")
        self.assertTrue(client.command("DATA").startswith("354"))

    def test_smuggling_variants(self):
        variants = [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r.\n",
                    b".\n"]
        for variant in variants:
            with self.subTest(variant=variant):
                client = self.server.client()
                self.data_session(client)
                client.send(b"Subject: smuggle\r\n\r\nx" + variant +
                            b"MAIL FROM:<evil@evil.test>\r\nRCPT TO:<bob@example.test>\r\n"
                            b"DATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n")
                reply = client.line()
                self.assertTrue(reply.startswith("550 5.6.11"), (variant, reply))
                # Nothing else was answered: no second transaction ran.
                self.assertEqual(client.command("NOOP"), "250 2.0.0 Ok")
                client.close()
        time.sleep(0.5)
        self.assertEqual(self.server.messages("alice"), [])
        self.assertEqual(self.server.messages("bob"), [])

    def test_bare_cr_and_lf_in_text(self):
        for body in (b"a\rb\r\n", b"a\nb\r\n", b"a\x00b\r\n"):
            client = self.server.client()
            self.data_session(client)
            client.send(b"Subject: x\r\n\r\n" + body + b".\r\n")
            self.assertTrue(client.line().startswith("550 5.6.11"))
        time.sleep(0.3)
        self.assertEqual(self.server.messages(), [])

    def test_bare_lf_command(self):
        client = self.server.client()
        client.send("EHLO x.example\n")
        self.assertTrue(client.line().startswith("500 5.5.2"))

    def test_cr_lf_nul_in_parameters(self):
        client = self.server.client()
        ehlo(client)
        for line in (b"MAIL FROM:<a@b.test> ENVID=a\x00b\r\n", b"MAIL FROM:<a\rb@b.test>\r\n",
                     b"MAIL FROM:<a@b.test> ENVID=a+0D+0Ab\r\n",
                     b"MAIL FROM:<a@b.test> ENVID=a+00b\r\n"):
            client.send(line)
            reply = client.line()
            self.assertTrue(reply.startswith("50"), (line, reply))
        self.assertEqual(client.command("MAIL FROM:<bob@example.test>"), "250 2.1.0 Ok")
        client.send(b"RCPT TO:<alice@example.test> ORCPT=rfc822;a+0Ab@c.test\r\n")
        self.assertTrue(client.line().startswith("501 5.5.4"))

    def test_overlong_command_line(self):
        client = self.server.client()
        ehlo(client)
        self.assertTrue(client.command("NOOP " + "x" * 600).startswith("500 5.5.2"))
        self.assertTrue(client.command("NOOP " + "x" * 20000).startswith("500 5.5.2"))
        self.assertEqual(client.command("NOOP"), "250 2.0.0 Ok")

    def test_starttls_discards_pipelined_commands(self):
        client = self.server.client()
        ehlo(client)
        client.send("STARTTLS\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<alice@example.test>\r\n")
        self.assertTrue(client.line().startswith("220 2.0.0"))
        tls_wrap(client)
        # After TLS the session starts over: MAIL needs EHLO first, and
        # nothing of the injected commands was answered.
        self.assertTrue(client.command("MAIL FROM:<bob@example.test>").startswith("503 5.5.1"))
        lines = ehlo(client)
        self.assertNotIn("250-STARTTLS", lines)
        self.assertIn("250-AUTH PLAIN LOGIN", lines)

    def test_disconnect_mid_data_leaves_nothing(self):
        client = self.server.client()
        self.data_session(client)
        client.send("Subject: cut\r\n\r\npartial body\r\n")
        client.close()
        time.sleep(0.5)
        self.assertEqual(self.server.messages(), [])
        self.assertEqual([m for m in self.server.queue_list().get("messages", [])], [])

    def test_disconnect_after_final_dot_keeps_one_message(self):
        client = self.server.client()
        self.data_session(client)
        client.send("Subject: dot\r\n\r\nbody\r\n.\r\n")
        client.sock.shutdown(socket.SHUT_RDWR)
        client.close()
        stored = self.server.wait_messages(1)
        time.sleep(0.3)
        self.assertEqual(len(self.server.messages()), 1)
        self.assertTrue(body_of(stored[0]).endswith(b"body\r\n"))

    def test_too_many_errors(self):
        client = self.server.client()
        last = None
        for _ in range(60):
            client.send("BOGUS\r\n")
            last = client.line()
            if last is None or last.startswith("421"):
                break
        self.assertTrue(last.startswith("421 4.7.0"), last)
        self.assertTrue(client.at_eof())


class Policy(SmtpTestCase):
    smtp_extra = 'relay_networks = ("192.0.2.0/24", "2001:db8::/32");'

    def test_no_open_relay(self):
        client = self.server.client()
        ehlo(client)
        client.command("MAIL FROM:<spammer@example.test>")
        self.assertTrue(client.command("RCPT TO:<victim@remote.test>").startswith("554 5.7.1"))
        self.assertTrue(client.command("RCPT TO:<victim@[192.0.2.1]>").startswith("554 5.7.1"))
        self.assertEqual(client.command("RCPT TO:<alice@example.test>"), "250 2.1.5 Ok")

    def test_auth_before_tls_refused(self):
        client = self.server.client()
        ehlo(client)
        self.assertTrue(client.command("AUTH PLAIN AGFsaWNlAGFsaWNl").startswith("538 5.7.11"))


class RelayNetworks(SmtpTestCase):
    smtp_extra = 'relay_networks = ("127.0.0.0/8");'

    def test_trusted_network_may_relay(self):
        client = self.server.client()
        ehlo(client)
        client.command("MAIL FROM:<alice@example.test>")
        self.assertEqual(client.command("RCPT TO:<someone@remote.test>"), "250 2.1.5 Ok")


class Reload(SmtpTestCase):
    def test_policy_and_names_apply_at_once_listeners_at_restart(self):
        before = self.server.client()
        ehlo(before)
        before.command("MAIL FROM:<alice@example.test>")
        self.assertTrue(before.command("RCPT TO:<someone@remote.test>").startswith("554 5.7.1"))
        self.server.reload('relay_networks = ("127.0.0.0/8"); greeting = "reloaded ESMTP";',
                           listen_port=free_port())
        # The open session goes on, under the new policy from its next command.
        self.assertEqual(before.command("RCPT TO:<someone@remote.test>"), "250 2.1.5 Ok")
        self.assertTrue(before.command("QUIT").startswith("221 2.0.0 mx.example.test"))
        # A listener change waits for a restart: the old port still serves.
        self.server.daemon.wait_log(
            "reload: listen changes only at restart; keeping the running value")
        client = smtplib.SMTP(timeout=10)
        self.addCleanup(client.close)
        self.assertEqual(client.connect("127.0.0.1", self.server.port), (220, b"reloaded ESMTP"))
        client.ehlo()
        client.mail("alice@example.test")
        self.assertEqual(client.rcpt("someone@remote.test")[0], 250)

    def test_bad_relay_networks_are_refused(self):
        self.server.reload('relay_networks = ("127.0.0.0/8");')
        self.server.daemon.write_config(self.server.config('relay_networks = ("300.1.1.1/8");'))
        self.server.daemon.signal(signal.SIGHUP)
        self.server.daemon.wait_log("reload refused, previous configuration stays in force")
        client = self.server.client()
        ehlo(client)
        client.command("MAIL FROM:<alice@example.test>")
        self.assertEqual(client.command("RCPT TO:<someone@remote.test>"), "250 2.1.5 Ok")


class Auth(SmtpTestCase):
    def tls_client(self):
        client = self.server.client()
        ehlo(client)
        self.assertTrue(client.command("STARTTLS").startswith("220"))
        tls_wrap(client)
        ehlo(client)
        return client

    def test_plain_good_and_relay(self):
        client = self.tls_client()
        token = base64.b64encode(b"\0alice@example.test\0alice").decode()
        self.assertTrue(client.command("AUTH PLAIN " + token).startswith("235 2.7.0"))
        self.assertTrue(client.command("AUTH PLAIN " + token).startswith("503 5.5.1"))
        client.command("MAIL FROM:<alice@example.test>")
        self.assertEqual(client.command("RCPT TO:<someone@remote.test>"), "250 2.1.5 Ok")
        stored_states = self.server.daemon.ctl("conns")[1]
        self.assertIn("alice@example.test", stored_states)

    def test_plain_bad_password_and_continuation(self):
        client = self.tls_client()
        self.assertEqual(client.command("AUTH PLAIN"), "334 ")
        token = base64.b64encode(b"\0alice@example.test\0wrong").decode()
        self.assertTrue(client.command(token).startswith("535 5.7.8"))
        client.command("MAIL FROM:<alice@example.test>")
        self.assertTrue(client.command("RCPT TO:<someone@remote.test>").startswith("554 5.7.1"))

    def test_login_good_and_bad(self):
        client = self.tls_client()
        self.assertEqual(client.command("AUTH LOGIN"), "334 VXNlcm5hbWU6")
        self.assertEqual(client.command(base64.b64encode(b"bob@example.test").decode()),
                         "334 UGFzc3dvcmQ6")
        self.assertTrue(client.command(base64.b64encode(b"nope").decode())
                        .startswith("535 5.7.8"))
        self.assertEqual(client.command("AUTH LOGIN " +
                                        base64.b64encode(b"bob@example.test").decode()),
                         "334 UGFzc3dvcmQ6")
        self.assertTrue(client.command(base64.b64encode(b"bob").decode())
                        .startswith("235 2.7.0"))

    def test_cancel_and_broken_base64(self):
        client = self.tls_client()
        self.assertEqual(client.command("AUTH PLAIN"), "334 ")
        self.assertTrue(client.command("*").startswith("501 5.0.0"))
        self.assertTrue(client.command("AUTH PLAIN ***").startswith("501 5.5.2"))
        self.assertTrue(client.command("AUTH PLAIN YQ").startswith("501 5.5.2"))
        self.assertEqual(client.command("AUTH LOGIN"), "334 VXNlcm5hbWU6")
        self.assertTrue(client.command("*").startswith("501 5.0.0"))
        self.assertTrue(client.command("AUTH CRAM-MD5").startswith("504 5.5.4"))
        # Proxy authorisation is refused.
        token = base64.b64encode(b"bob@example.test\0alice@example.test\0alice").decode()
        self.assertTrue(client.command("AUTH PLAIN " + token).startswith("535 5.7.8"))
        self.assertEqual(client.command("NOOP"), "250 2.0.0 Ok")

    def test_smtplib_login(self):
        client = self.smtp()
        client.starttls(context=unverified_context())
        client.login("alice@example.test", "alice")
        refused = client.sendmail("alice@example.test", ["bob@example.test"], MESSAGE)
        self.assertEqual(refused, {})
        client.quit()
        self.server.wait_messages(1, "bob")


class Submission(SmtpTestCase):
    def test_auth_required_and_headers_added(self):
        client = smtplib.SMTP("127.0.0.1", self.server.sub_port, timeout=10)
        self.addCleanup(client.close)
        client.ehlo("client.example")
        code, _ = client.docmd("MAIL", "FROM:<alice@example.test>")
        self.assertEqual(code, 530)
        client.starttls(context=unverified_context())
        client.ehlo("client.example")
        client.login("alice@example.test", "alice")
        client.sendmail("alice@example.test", ["bob@example.test"],
                        b"Subject: no date\r\n\r\nbody\r\n")
        client.quit()
        stored = self.server.wait_messages(1, "bob")[0]
        headers = stored.split(b"\n\n", 1)[0]
        self.assertIn(b"\nDate: ", headers)
        self.assertIn(b"\nMessage-ID: <", headers)
        self.assertIn(b"with ESMTPSA", headers)
        self.assertIn(b"Subject: no date", headers)

    def test_implicit_tls(self):
        client = smtplib.SMTP_SSL("127.0.0.1", self.server.subs_port, timeout=10,
                                  context=unverified_context())
        self.addCleanup(client.close)
        client.ehlo("client.example")
        self.assertFalse(client.has_extn("starttls"))
        client.login("bob@example.test", "bob")
        client.sendmail("bob@example.test", ["alice@example.test"], MESSAGE)
        client.quit()
        stored = self.server.wait_messages(1)[0]
        self.assertEqual(body_of(stored), MESSAGE)


class Lifecycle(unittest.TestCase):
    def test_per_ip_limit(self):
        server = SmtpServer(self, smtp_extra="max_per_ip = 1;")
        first = server.client()
        second = server.client(greet=False)
        self.assertTrue(second.line().startswith("421 4.7.0"))
        self.assertEqual(first.command("NOOP"), "250 2.0.0 Ok")

    def test_command_timeout(self):
        server = SmtpServer(self, smtp_extra='command_timeout = "1s";')
        client = server.client()
        self.assertTrue(client.line().startswith("421 4.4.2"))
        self.assertTrue(client.at_eof())

    def test_shutdown_says_421(self):
        server = SmtpServer(self)
        client = server.client()
        ehlo(client)
        server.daemon.stop()
        self.assertTrue(client.line().startswith("421 4.3.2"))

    def test_stats_command(self):
        server = SmtpServer(self)
        client = server.client()
        client.command("QUIT")
        status, out, err = server.daemon.ctl("smtp", "stats")
        self.assertEqual(status, 0, err)
        self.assertIn("connections 1", out)


TESTQUEUE = os.path.join(BUILDDIR, "tests", "modules", "testqueue", ".libs", "queue-store.so")


class DoubleQueue(unittest.TestCase):
    """The smtp module against tests/modules/testqueue.c: a queue whose
    write() fails like a full disk, whose commit fails or is slow, and
    which keeps exactly the bytes and envelope it was given."""

    def start(self, queue_extra=""):
        if not os.path.exists(TESTQUEUE):
            self.skipTest("tests/modules/testqueue not built (make check TESTS=)")
        self.port = free_port()
        body = f"""modules = ("queue-store", "smtp");
queue-store = {{ dir = "{{base}}/q"; local_domains = ("example.test");
	users = ("alice@example.test"); {queue_extra} }};
smtp = {{ listen = ("127.0.0.1:{self.port}"); hostname = "mx.example.test"; }};
"""
        self.daemon = Posternd(self, body, name="smtpq")
        os.makedirs(os.path.join(self.daemon.base, "q"))
        link = os.path.join(self.daemon.moddir, "queue-store.so")
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(TESTQUEUE, link)
        self.daemon.start()
        self.qdir = os.path.join(self.daemon.base, "q")

    def client(self):
        from harness import LineClient
        client = LineClient(self.port)
        self.addCleanup(client.close)
        self.assertTrue(client.line().startswith("220 "))
        ehlo(client)
        return client

    def files(self):
        return sorted(os.listdir(self.qdir))

    def transaction(self, client, envelope_extra=""):
        self.assertEqual(client.command("MAIL FROM:<bob@remote.test>" + envelope_extra),
                         "250 2.1.0 Ok")
        self.assertEqual(client.command("RCPT TO:<alice@example.test> NOTIFY=FAILURE "
                                        "ORCPT=rfc822;alice+2Bx@example.test"), "250 2.1.5 Ok")
        self.assertTrue(client.command("DATA").startswith("354"))

    def test_exact_bytes_and_envelope(self):
        self.start()
        client = self.client()
        self.transaction(client, " RET=FULL ENVID=abc+2Bdef BODY=8BITMIME")
        client.send(b"Subject: t\r\n\r\n..x\r\n\xc3\xa9\r\n.\r\n")
        self.assertEqual(client.line(), "250 2.0.0 Ok: queued as TQ1")
        with open(os.path.join(self.qdir, "1.eml"), "rb") as f:
            stored = f.read()
        self.assertTrue(stored.startswith(b"Received: from client.example ([127.0.0.1])\r\n"))
        self.assertTrue(stored.endswith(b"\r\nSubject: t\r\n\r\n.x\r\n\xc3\xa9\r\n"))
        with open(os.path.join(self.qdir, "1.env")) as f:
            env = f.read()
        self.assertIn("sender bob@remote.test\n", env)
        self.assertIn("envid abc+def\n", env)
        self.assertIn("8bitmime 1\n", env)
        self.assertIn("ret 1\n", env)
        self.assertIn("rcpt alice@example.test notify=4 orcpt=rfc822;alice+x@example.test\n", env)

    def test_disk_full_answers_452_and_keeps_nothing(self):
        self.start("fail_write_after = 300;")
        client = self.client()
        self.transaction(client)
        client.send("Subject: big\r\n\r\n" + ("z" * 70 + "\r\n") * 2000 + ".\r\n")
        self.assertTrue(client.line().startswith("452 4.3.1"))
        self.assertEqual(self.files(), [])
        # The session goes on.
        self.assertEqual(client.command("NOOP"), "250 2.0.0 Ok")

    def test_failed_commit_answers_451(self):
        self.start("fail_commit = true;")
        client = self.client()
        self.transaction(client)
        client.send("Subject: x\r\n\r\nbody\r\n.\r\n")
        self.assertTrue(client.line().startswith("451 4.3.0"))
        self.assertEqual(self.files(), [])

    def test_vanish_after_dot_with_slow_commit(self):
        self.start('commit_delay = "500ms";')
        client = self.client()
        self.transaction(client)
        client.send("Subject: x\r\n\r\nbody\r\n.\r\nNOOP\r\n")
        client.close()
        wait_for(lambda: "1.eml" in self.files(), timeout=5, what="the detached commit")
        self.assertEqual(self.files(), ["1.eml", "1.env"])

    def test_vanish_mid_data_aborts(self):
        self.start()
        client = self.client()
        self.transaction(client)
        client.send("Subject: x\r\n\r\npartial")
        time.sleep(0.2)
        client.close()
        time.sleep(0.5)
        self.assertEqual(self.files(), [])

    def test_tempfail_recipient(self):
        self.start()
        client = self.client()
        client.command("MAIL FROM:<bob@remote.test>")
        self.assertTrue(client.command("RCPT TO:<tempfail@example.test>").startswith("451 4.3.0"))


class Docs(unittest.TestCase):
    """The README and the man page list every key of the settings table
    with its default (the C table, with the shared auth rows, is the truth)."""

    def test_every_key_documented(self):
        from docs_util import assert_module_documented
        assert_module_documented(self, "smtp", [os.path.join("modules", "smtp", "smtp.c")], 50)


if __name__ == "__main__":
    unittest.main()
