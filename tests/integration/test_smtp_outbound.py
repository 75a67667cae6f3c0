"""smtp module, outbound client features smtp-sink cannot show: opportunistic
STARTTLS (used, retried in plain text after a failed handshake, not tried
when not offered), DSN/SIZE/BODY/SMTPUTF8 parameters passed on only when
offered, the per-destination connection limit, and pipelining. The remote
side is fakesmtp.FakeSmtp on loopback, the route relay_host = [127.0.0.1]."""
import smtplib
import unittest

from fakesmtp import DEFAULT_CAPS, FakeSmtp, params
from harness import wait_for
from smtputil import SmtpServer

TRUSTED = 'relay_networks = ("127.0.0.0/8");'
SENDER = "alice@example.test"
MESSAGE = (b"From: alice@example.test\r\nTo: someone@remote.test\r\nSubject: out\r\n"
           b"Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <3@example.test>\r\n\r\n"
           b".leading dot must arrive\r\n..two dots\r\nbody\r\n")
EIGHT_BIT = ("From: alice@example.test\r\nSubject: 8bit\r\nMIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: 8bit\r\n\r\nGr\u00fc\u00dfe aus K\u00f6ln\r\n"
             ).encode()


def posternd(test, fake, extra=""):
    return SmtpServer(test, smtp_extra=TRUSTED + extra, relay_port=fake.port)


def submit(server, rcpts, message=MESSAGE, mail_options=(), rcpt_options=None):
    """One transaction into posternd's SMTP listener (a trusted network).
    rcpt_options: {recipient: [options]}."""
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo("client.example")
        code, text = client.mail(SENDER, list(mail_options))
        assert code == 250, (code, text)
        for rcpt in rcpts:
            code, text = client.rcpt(rcpt, list((rcpt_options or {}).get(rcpt, [])))
            assert code == 250, (code, text)
        code, text = client.data(message)
        assert code == 250, (code, text)


def queue_empty(server):
    return server.queue_list().get("messages", []) == []


def body_of(data):
    """The message after posternd's own Received header."""
    assert data.startswith(b"Received: "), data[:100]
    end = data.index(b"\r\n", data.index(b"\r\n") + 2)
    while data[end + 2:end + 3] in (b" ", b"\t"):
        end = data.index(b"\r\n", end + 2)
    return data[end + 2:]


class StartTls(unittest.TestCase):
    def test_message_goes_over_tls_when_offered(self):
        fake = FakeSmtp(self, starttls=True)
        server = posternd(self, fake)
        submit(server, ["someone@remote.test"])
        message = wait_for(fake.got, timeout=15, what="the message at the fake server")[0]
        self.assertTrue(message.tls)
        self.assertEqual(body_of(message.data), MESSAGE)
        self.assertEqual(fake.handshakes, 1)
        self.assertEqual(fake.connections, 1)
        verbs = [(c.verb, c.tls) for c in fake.lines()]
        self.assertEqual(verbs[:3], [("EHLO", False), ("STARTTLS", False), ("EHLO", True)])
        # Nothing of the transaction went in plain text, nothing was
        # pipelined behind STARTTLS.
        self.assertTrue(all(tls for verb, tls in verbs[2:]), verbs)
        self.assertEqual(fake.injected, [])
        # The relay is an address literal: no SNI (RFC 6066 3 forbids
        # addresses as server names).
        self.assertEqual(fake.sni, [])
        wait_for(lambda: queue_empty(server), timeout=10, what="queue to empty")
        self.assertIn("TLS: TLSv1.", server.daemon.log())

    def test_failed_handshake_retries_same_host_in_plain_text(self):
        fake = FakeSmtp(self, starttls=True, tls_fail=True)
        server = posternd(self, fake)
        submit(server, ["someone@remote.test"])
        message = wait_for(fake.got, timeout=15, what="the message at the fake server")[0]
        self.assertFalse(message.tls)
        self.assertEqual(body_of(message.data), MESSAGE)
        self.assertEqual(fake.connections, 2)
        self.assertEqual([c.verb for c in fake.lines(conn=1)], ["EHLO", "STARTTLS"])
        # The retry does not try TLS again although it is still offered.
        second = [c.verb for c in fake.lines(conn=2)]
        self.assertNotIn("STARTTLS", second)
        self.assertEqual(second[:2], ["EHLO", "MAIL"])
        self.assertEqual(message.conn, 2)
        wait_for(lambda: queue_empty(server), timeout=10, what="queue to empty")
        self.assertEqual(len(fake.got()), 1)

    def test_plain_text_when_not_offered(self):
        fake = FakeSmtp(self, starttls=False)
        server = posternd(self, fake)
        submit(server, ["someone@remote.test"])
        message = wait_for(fake.got, timeout=15, what="the message at the fake server")[0]
        self.assertFalse(message.tls)
        self.assertEqual(body_of(message.data), MESSAGE)
        self.assertEqual(fake.lines(verb="STARTTLS"), [])
        self.assertEqual(fake.connections, 1)

    def test_refused_starttls_goes_on_in_plain_text(self):
        fake = FakeSmtp(self, starttls=True, replies={"STARTTLS": "454 4.7.0 TLS not available"})
        server = posternd(self, fake)
        submit(server, ["someone@remote.test"])
        message = wait_for(fake.got, timeout=15, what="the message at the fake server")[0]
        self.assertFalse(message.tls)
        self.assertEqual(fake.connections, 1)
        self.assertEqual(fake.handshakes, 0)
        self.assertEqual([c.verb for c in fake.lines()][:3], ["EHLO", "STARTTLS", "MAIL"])


class Parameters(unittest.TestCase):
    DSN_MAIL = ["RET=HDRS", "ENVID=q+2Bx+3Dy+20z"]
    DSN_RCPT = {"someone@remote.test": ["NOTIFY=SUCCESS,FAILURE",
                                        "ORCPT=rfc822;orig+2Bbox@remote.test"],
                "other@remote.test": ["NOTIFY=NEVER"]}

    def test_dsn_and_size_passed_on_when_offered(self):
        fake = FakeSmtp(self)
        server = posternd(self, fake)
        submit(server, ["someone@remote.test", "other@remote.test"], mail_options=self.DSN_MAIL,
               rcpt_options=self.DSN_RCPT)
        message = wait_for(fake.got, timeout=15, what="the message at the fake server")[0]
        mail = params(message.mail)
        # ENVID decodes to "q+x=y z" and is xtext-encoded again.
        self.assertEqual(mail.pop("RET"), "HDRS")
        self.assertEqual(mail.pop("ENVID"), "q+2Bx+3Dy+20z")
        self.assertEqual(int(mail.pop("SIZE")), len(message.data))
        self.assertEqual(mail, {}, "7-bit, ASCII: no BODY, no SMTPUTF8")
        rcpts = {r.split(">")[0].split("<")[1]: params(r) for r in message.rcpts}
        self.assertEqual(rcpts["someone@remote.test"],
                         {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;orig+2Bbox@remote.test"})
        self.assertEqual(rcpts["other@remote.test"], {"NOTIFY": "NEVER"})

    def test_nothing_passed_on_when_not_offered(self):
        fake = FakeSmtp(self, caps=("PIPELINING", "ENHANCEDSTATUSCODES"))
        server = posternd(self, fake)
        submit(server, ["someone@remote.test", "other@remote.test"], message=EIGHT_BIT,
               mail_options=self.DSN_MAIL + ["BODY=8BITMIME"], rcpt_options=self.DSN_RCPT)
        message = wait_for(fake.got, timeout=15, what="the message at the fake server")[0]
        self.assertEqual(message.mail, f"MAIL FROM:<{SENDER}>")
        self.assertEqual(sorted(message.rcpts),
                         ["RCPT TO:<other@remote.test>", "RCPT TO:<someone@remote.test>"])
        # An 8-bit body to a server without 8BITMIME goes anyway (README).
        self.assertEqual(body_of(message.data), EIGHT_BIT)

    def test_8bitmime_and_smtputf8_when_needed_and_offered(self):
        fake = FakeSmtp(self)
        server = posternd(self, fake)
        rcpt = "j\u00f6rg@remote.test"
        submit(server, [rcpt], message=EIGHT_BIT, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        message = wait_for(fake.got, timeout=15, what="the message at the fake server")[0]
        mail = params(message.mail)
        self.assertEqual(mail["BODY"], "8BITMIME")
        self.assertIn("SMTPUTF8", mail)
        self.assertIsNone(mail["SMTPUTF8"])
        self.assertEqual(message.rcpts, [f"RCPT TO:<{rcpt}>"])
        self.assertEqual(body_of(message.data), EIGHT_BIT)

    def test_smtputf8_message_to_server_without_it_bounces(self):
        fake = FakeSmtp(self, caps=("PIPELINING", "8BITMIME"))
        server = posternd(self, fake)
        submit(server, ["j\u00f6rg@remote.test"], mail_options=["SMTPUTF8"])
        bounce = server.wait_messages(1, "alice", timeout=15)[0]
        self.assertIn(b"5.6.7", bounce)
        self.assertEqual(fake.lines(verb="MAIL"), [])

    def test_message_over_remote_size_bounces(self):
        fake = FakeSmtp(self, caps=("PIPELINING", "SIZE 100"))
        server = posternd(self, fake)
        submit(server, ["someone@remote.test"])
        bounce = server.wait_messages(1, "alice", timeout=15)[0]
        self.assertIn(b"5.3.4", bounce)
        self.assertEqual(fake.lines(verb="MAIL"), [])


class DestinationLimit(unittest.TestCase):
    def test_connections_per_destination_are_limited(self):
        count, limit = 6, 2
        # Greetings held back: every connection the client opens stays open.
        fake = FakeSmtp(self, hold=True, delays={"DOT": 0.1})
        server = posternd(self, fake, f"outbound_max_per_destination = {limit};")
        for i in range(count):
            submit(server, [f"user{i}@remote.test"])
        wait_for(lambda: fake.active == limit, timeout=10, what=f"{limit} connections")
        wait_for(lambda: "destination 127.0.0.1 active 2 waiting 4" in
                 server.daemon.ctl("smtp", "stats")[1], timeout=5, what="4 jobs waiting")
        self.assertEqual(fake.connections, limit)
        fake.release()
        messages = wait_for(lambda: fake.got(count), timeout=20, what=f"{count} messages")
        self.assertEqual(sorted(m.rcpts[0] for m in messages),
                         sorted(f"RCPT TO:<user{i}@remote.test>" for i in range(count)))
        self.assertEqual(fake.max_active, limit)
        self.assertEqual(fake.connections, count)
        wait_for(lambda: queue_empty(server), timeout=10, what="queue to empty")


class Pipelining(unittest.TestCase):
    RCPTS = ["a@remote.test", "b@remote.test", "c@remote.test"]

    def test_mail_rcpt_data_in_one_write_when_offered(self):
        fake = FakeSmtp(self, replies={"RCPT": lambda line: "550 5.1.1 No such user"
                                       if "<b@" in line else None})
        server = posternd(self, fake)
        submit(server, self.RCPTS)
        message = wait_for(fake.got, timeout=15, what="the message at the fake server")[0]
        self.assertEqual(message.rcpts, ["RCPT TO:<a@remote.test>", "RCPT TO:<c@remote.test>"])
        batch = next(lines for conn, lines in fake.batches if lines[0].startswith("MAIL"))
        self.assertEqual([line.split(":")[0] for line in batch],
                         ["MAIL FROM", "RCPT TO", "RCPT TO", "RCPT TO", "DATA"])
        # The recipient refused in the middle of the batch bounces alone.
        bounce = server.wait_messages(1, "alice", timeout=15)[0]
        self.assertIn(b"b@remote.test", bounce)
        self.assertNotIn(b"Final-Recipient: rfc822; a@remote.test", bounce)

    def test_waits_for_each_reply_when_not_offered(self):
        caps = [c for c in DEFAULT_CAPS if c != "PIPELINING"]
        fake = FakeSmtp(self, caps=caps, delays={"MAIL": 0.3, "RCPT": 0.2})
        server = posternd(self, fake)
        submit(server, self.RCPTS)
        message = wait_for(fake.got, timeout=15, what="the message at the fake server")[0]
        self.assertEqual(len(message.rcpts), 3)
        wait_for(lambda: fake.lines(verb="QUIT"), timeout=10, what="QUIT")
        commands = fake.lines()
        self.assertEqual([c.verb for c in commands],
                         ["EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "DATA", "QUIT"])
        self.assertEqual([c for c in commands if c.pipelined], [])
        self.assertTrue(all(len(lines) == 1 for conn, lines in fake.batches), fake.batches)


if __name__ == "__main__":
    unittest.main()
