"""Delivery status notifications of the queue-store module, with short
configured times: the delay notice, the bounce at max_lifetime, failures,
NOTIFY and RET, parsed with Python's email package as RFC 3464 reports.
The remote side is the fake transport (tests/modules/testtransport.c)."""
import email.utils
import time
import unittest

from queue_util import QueueServer, message_bytes, parse_dsn, submit_mode, wait_until

FAST = ('retry_min = "1s"; retry_max = "1s"; delay_warning = "2s"; max_lifetime = "5s";')


@unittest.skipIf(submit_mode() != "testsubmit", "needs the fake transport (testsubmit mode)")
class Notices(unittest.TestCase):
    def server(self, extra=FAST, reply=("451", "4.4.1", "remote busy")):
        server = QueueServer(self, queue_extra=extra)
        server.transport("reply", "*", *reply)
        return server

    def assert_date(self, value):
        self.assertIsNotNone(email.utils.parsedate_tz(value), value)

    def test_delay_notice_then_bounce_on_time(self):
        server = self.server()
        started = time.monotonic()
        queue_id = server.submit("bob@example.test",
                                 [("carol@remote.test", "ORCPT=rfc822;Carol@Remote.TEST")],
                                 message_bytes("slow one", "the body"), "ENVID=env-42")
        [delay_raw] = server.wait_messages(1, "bob", timeout=10)
        delay_at = time.monotonic() - started
        self.assertGreaterEqual(delay_at, 1.8)
        msg, human, per_msg, [rcpt], returned = parse_dsn(delay_raw)
        self.assertTrue(delay_raw.startswith(b"Return-Path: <>\n"))   # from the null sender
        self.assertEqual(msg["Subject"], "Delayed Mail (still being retried)")
        self.assertEqual(msg["From"], "Mail Delivery System <MAILER-DAEMON@mx.example.test>")
        self.assertEqual(msg["To"], "<bob@example.test>")
        self.assertEqual(msg["Auto-Submitted"], "auto-replied")
        self.assertEqual(per_msg["Reporting-MTA"], "dns; mx.example.test")
        self.assertEqual(per_msg["Original-Envelope-Id"], "env-42")
        self.assert_date(per_msg["Arrival-Date"])
        self.assertEqual(rcpt["Action"], "delayed")
        self.assertEqual(rcpt["Status"], "4.4.1")
        self.assertEqual(rcpt["Final-Recipient"], "rfc822; carol@remote.test")
        self.assertEqual(rcpt["Original-Recipient"], "rfc822; Carol@Remote.TEST")
        self.assertEqual(rcpt["Remote-MTA"], "dns; mx.remote.test")
        self.assertEqual(rcpt["Diagnostic-Code"], "smtp; 451 4.4.1 remote busy")
        self.assert_date(rcpt["Last-Attempt-Date"])
        self.assert_date(rcpt["Will-Retry-Until"])
        self.assertEqual(returned.get_content_type(), "text/rfc822-headers")
        self.assertIn("Subject: slow one", returned.get_payload())
        self.assertNotIn("the body", returned.get_payload())
        self.assertTrue(server.message(queue_id)["delay_notice_sent"])

        messages = server.wait_messages(2, "bob", timeout=15)
        bounced_at = time.monotonic() - started
        self.assertGreaterEqual(bounced_at, 4.5)
        self.assertLess(bounced_at, 12)
        msg, human, per_msg, [rcpt], returned = parse_dsn(messages[1])
        self.assertEqual(msg["Subject"], "Undelivered Mail Returned to Sender")
        self.assertEqual(rcpt["Action"], "failed")
        self.assertEqual(rcpt["Status"], "4.4.7")
        self.assertIn("remote busy", rcpt["Diagnostic-Code"])
        self.assertIsNone(rcpt["Will-Retry-Until"])
        self.assertIn("<carol@remote.test>", human.get_payload())
        server.wait_queue_empty()
        log = server.daemon.log()
        self.assertRegex(log, queue_id + r": to=<carol@remote.test>.*status=expired")
        self.assertIn(f"{queue_id}: sender notified: delay notice", log)
        self.assertIn(f"{queue_id}: sender notified: failure notice", log)

    def test_ret_full_returns_the_message(self):
        server = self.server(reply=("550", "5.1.1", "no such user"))
        server.submit("bob@example.test", ["carol@remote.test"],
                      message_bytes("full back", "all of it\r\nline two"), "RET=FULL")
        [raw] = server.wait_messages(1, "bob")
        msg, human, per_msg, [rcpt], returned = parse_dsn(raw)
        self.assertEqual(rcpt["Action"], "failed")
        self.assertEqual(rcpt["Status"], "5.1.1")
        self.assertEqual(returned.get_content_type(), "message/rfc822")
        [inner] = returned.get_payload()
        self.assertEqual(inner["Subject"], "full back")
        self.assertIn("all of it", inner.get_payload())
        self.assertIsNone(per_msg["Original-Envelope-Id"])

    def test_ret_hdrs_and_too_big_return_headers(self):
        server = self.server(extra='bounce_size_limit = "1k";', reply=("550", "5.0.0", "no"))
        server.submit("bob@example.test", ["carol@remote.test"],
                      message_bytes("headers only", "secret body"), "RET=HDRS")
        server.submit("bob@example.test", ["carol@remote.test"],
                      message_bytes("too big", "b" * 5000), "RET=FULL")
        raws = server.wait_messages(2, "bob")
        for raw in raws:
            _, human, _, _, returned = parse_dsn(raw)
            self.assertEqual(returned.get_content_type(), "text/rfc822-headers")
            self.assertNotIn("secret body", returned.get_payload())
            self.assertNotIn("bbbb", returned.get_payload())
        self.assertTrue(any("too big to return" in parse_dsn(r)[1].get_payload() for r in raws))

    def test_notify(self):
        server = self.server(extra='retry_min = "1h"; retry_max = "1h";',
                             reply=("250", "2.0.0", "ok"))
        server.transport("reply", "fails.test", "550", "5.1.1", "unknown")
        server.submit("bob@example.test",
                      [("x@ok.test", "NOTIFY=SUCCESS"), ("y@ok.test", "NOTIFY=NEVER"),
                       ("z@fails.test", "NOTIFY=NEVER"), ("w@fails.test", "NOTIFY=DELAY"),
                       ("alice@example.test", "NOTIFY=SUCCESS,FAILURE")],
                      message_bytes("notify"))
        server.wait_queue_empty()
        time.sleep(0.3)
        reports = [parse_dsn(raw) for raw in server.messages("bob")]
        self.assertEqual(len(reports), 1, [r[0]["Subject"] for r in reports])
        msg, human, per_msg, rcpts, returned = reports[0]
        self.assertEqual(msg["Subject"], "Successful Mail Delivery Report")
        actions = {r["Final-Recipient"]: (r["Action"], r["Status"]) for r in rcpts}
        self.assertEqual(actions, {"rfc822; x@ok.test": ("relayed", "2.0.0"),
                                   "rfc822; alice@example.test": ("delivered", "2.0.0")})

    def test_never_about_the_null_sender(self):
        server = self.server(reply=("550", "5.1.1", "unknown"))
        queue_id = server.submit("", [("carol@remote.test", "NOTIFY=SUCCESS,FAILURE,DELAY")],
                                 message_bytes("a bounce itself"))
        server.wait_queue_empty()
        time.sleep(0.5)
        self.assertEqual(server.messages("bob"), [])
        self.assertNotIn("sender notified", server.daemon.log())
        self.assertRegex(server.daemon.log(), queue_id + r": to=<carol@remote.test>.*bounced")

    def test_notice_to_a_remote_sender_is_queued_and_relayed(self):
        server = self.server(extra='retry_min = "1h";', reply=("250", "2.0.0", "ok"))
        server.transport("reply", "gone.test", "550", "5.1.1", "unknown")
        server.submit("dave@far.test", ["u@gone.test"], message_bytes("from afar"))
        raws = wait_until(lambda: len(server.remote_messages()) >= 1 and server.remote_messages(),
                          what="the notice to be relayed")
        msg, _, _, [rcpt], _ = parse_dsn(raws[0])
        self.assertEqual(msg["To"], "<dave@far.test>")
        self.assertEqual(rcpt["Final-Recipient"], "rfc822; u@gone.test")
        server.wait_queue_empty()

    def test_held_messages_never_expire(self):
        server = self.server()
        queue_id = server.submit("bob@example.test", ["carol@remote.test"],
                                 message_bytes("held"))
        wait_until(lambda: server.message(queue_id)["recipients"][0]["attempts"] >= 1,
                   what="an attempt")
        server.ctl_ok("queue", "hold", queue_id)
        time.sleep(6)
        message = server.message(queue_id)
        self.assertEqual(message["state"], "held")
        self.assertEqual(message["recipients"][0]["state"], "pending")
        self.assertIsNone(message["expires"])
        self.assertEqual(server.messages("bob"), [])
        # Released past its lifetime: one more attempt, then it expires
        # (no delay notice right before the failure notice).
        before = server.transport_stats()["requests"]
        server.ctl_ok("queue", "release", queue_id)
        [raw] = server.wait_messages(1, "bob")
        self.assertEqual(server.transport_stats()["requests"], before + 1)
        msg, _, _, [rcpt], _ = parse_dsn(raw)
        self.assertEqual(msg["Subject"], "Undelivered Mail Returned to Sender")
        self.assertEqual(rcpt["Status"], "4.4.7")
        server.wait_queue_empty()
        self.assertEqual(len(server.messages("bob")), 1)

    def test_delay_warning_zero_disables(self):
        server = self.server(extra='retry_min = "1s"; retry_max = "1s"; delay_warning = "0";'
                             'max_lifetime = "3s";')
        server.submit("bob@example.test", ["carol@remote.test"], message_bytes("no delay"))
        [raw] = server.wait_messages(1, "bob", timeout=15)
        self.assertEqual(parse_dsn(raw)[0]["Subject"], "Undelivered Mail Returned to Sender")
        server.wait_queue_empty()
        self.assertEqual(len(server.messages("bob")), 1)

    def test_restart_keeps_the_schedule(self):
        server = self.server()
        queue_id = server.submit("bob@example.test", ["carol@remote.test"],
                                 message_bytes("restarted"))
        wait_until(lambda: server.message(queue_id)["recipients"][0]["attempts"] >= 1,
                   what="an attempt")
        server.daemon.stop()
        server.start()
        server.transport("reply", "*", "451", "4.4.1", "remote busy")
        # The notices still come on time, once each.
        raws = server.wait_messages(2, "bob", timeout=15)
        server.wait_queue_empty()
        time.sleep(0.5)
        self.assertEqual(len(server.messages("bob")), 2)
        subjects = sorted(parse_dsn(r)[0]["Subject"] for r in raws)
        self.assertEqual(subjects, ["Delayed Mail (still being retried)",
                                    "Undelivered Mail Returned to Sender"])


if __name__ == "__main__":
    unittest.main()
