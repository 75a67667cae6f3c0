"""Integration tests of the queue-store module: local delivery into Maildir,
the queue view, hold/release/delete/flush, remote retries through a fake
transport, restarts, quarantine of damaged files, the queue lock and a
full disk. The submission path is tests/integration/queue_util.py's
(testsubmit by default, or the smtp module)."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import Posternd, wait_for
from queue_util import (QueueServer, SubmitError, TestSubmitClient, incoming_leftovers,
                        message_bytes, parse_dsn, submit_mode, wait_until)

NEEDS_TESTSUBMIT = unittest.skipIf(submit_mode() != "testsubmit",
                                   "needs the fake transport (testsubmit mode only)")


class LocalDelivery(unittest.TestCase):
    def setUp(self):
        self.server = QueueServer(self)

    def test_delivered_to_alice_as_maildir(self):
        data = message_bytes("local one", "first line\r\nsecond line")
        queue_id = self.server.submit("bob@example.test", ["alice@example.test"], data)
        self.assertRegex(queue_id, r"^[0-9A-F]{16}$")
        [raw] = self.server.wait_messages(1)
        self.assertTrue(raw.startswith(b"Return-Path: <bob@example.test>\nDelivered-To: "
                                       b"alice@example.test\n"), raw[:200])
        self.assertIn(b"Subject: local one\n", raw)
        self.assertIn(b"\nfirst line\nsecond line\n", raw)
        self.assertNotIn(b"\r\n", raw)   # Maildir convention: LF
        [name] = self.server.mail_files()
        self.assertIn("/new/", name)
        # Maildir++ name with sizes and the delivery id hash, as mailstore writes it.
        self.assertRegex(os.path.basename(name), r",S=\d+,W=\d+,D=[0-9a-f]{32}$")
        self.server.wait_queue_empty()
        log = self.server.daemon.log()
        self.assertIn(f"{queue_id}: from=<bob@example.test>", log)
        self.assertRegex(log, queue_id + r": to=<alice@example.test>, relay=local, .*status=sent")
        # Nothing left on disk either.
        wait_until(lambda: os.listdir(os.path.join(self.server.queue_dir, "queue")) == [],
                   what="queue/ to be empty")
        self.assertEqual(self.server.incoming_leftovers(), [])

    def test_finished_message_files_are_recycled(self):
        """A delivered message's file becomes an empty spare that the next
        message is written into: no inode allocated on the event loop."""
        big = message_bytes("big one", "x" * 300000)
        self.server.submit("bob@example.test", ["alice@example.test"], big)
        self.server.wait_messages(1)
        self.server.wait_queue_empty()
        spares = wait_until(lambda: (s := self.server.spares()) and list(s.values()) == [0] and s,
                            what="one empty spare")
        self.assertEqual(self.server.stats()["spares"], 1)
        self.assertEqual(self.server.stats()["spares_reused"], 0)
        small = message_bytes("small one", "short")
        self.server.submit("bob@example.test", ["alice@example.test"], small)
        messages = self.server.wait_messages(2)
        # Nothing of the big message's bytes survives in the small one.
        small_copy = [m for m in messages if b"small one" in m]
        self.assertEqual(len(small_copy), 1)
        self.assertTrue(small_copy[0].endswith(small.replace(b"\r\n", b"\n")), small_copy[0])
        self.assertNotIn(b"xxxx", small_copy[0])
        self.assertEqual(self.server.stats()["spares_reused"], 1)
        self.server.wait_queue_empty()
        # The same inode came back as the spare once more.
        wait_until(lambda: list(self.server.spares().values()) == [0], what="the spare back")
        self.assertNotEqual(list(self.server.spares()), list(spares))
        # A restart empties incoming/; spares are not unfinished receptions.
        self.server.daemon.stop()
        self.server.start()
        self.assertEqual(os.listdir(os.path.join(self.server.queue_dir, "incoming")), [])
        starts = re.findall(r"(\d+) unfinished receptions", self.server.daemon.log())
        self.assertEqual(starts, ["0", "0"])

    def test_unknown_local_user_is_refused_and_remote_is_remote(self):
        client = self.server.client()
        self.assertEqual(client.check("nobody@example.test"), "-ERR unknown user")
        self.assertEqual(client.check("ALICE@Example.TEST"), "+OK local")
        self.assertEqual(client.check("carol@remote.test"), "+OK remote")
        with self.assertRaises(SubmitError):
            client.submit("bob@example.test", ["nobody@example.test"], message_bytes())

    def test_several_local_recipients_and_duplicates(self):
        queue_id = self.server.submit("carol@remote.test",
                                      ["alice@example.test", "bob@example.test",
                                       "alice@example.test"], message_bytes("two"))
        self.server.wait_messages(1, "alice")
        self.server.wait_messages(1, "bob")
        self.server.wait_queue_empty()
        time.sleep(0.2)
        self.assertEqual(len(self.server.messages("alice")), 1)
        self.assertIn(queue_id, self.server.daemon.log())

    def test_concurrent_commits_share_fsyncs(self):
        """Group commit: concurrent commits are made durable together."""
        errors = []

        def sender(number):
            try:
                client = self.server.client_unregistered()
                for i in range(15):
                    client.submit("bob@example.test", ["alice@example.test"],
                                  message_bytes(f"group {number} {i}"))
                client.close()
            except Exception as err:   # reported below, in the test's thread
                errors.append(err)

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        self.assertEqual(errors, [])
        self.server.wait_messages(120, timeout=30)
        self.server.wait_queue_empty(timeout=30)
        stats = self.server.stats()
        self.assertEqual(stats["accepted"], 120)
        self.assertEqual(stats["delivered"], 120)
        self.assertGreater(stats["sync_max_batch"], 1)
        self.assertLess(stats["sync_batches"], stats["sync_ops"])
        # every local delivery fsynced new/, alone or with others
        self.assertEqual(stats["maildir_deliveries"], 120)
        self.assertGreaterEqual(stats["maildir_dir_fsyncs"], 1)
        self.assertLessEqual(stats["maildir_dir_fsyncs"], 120)
        self.assertEqual(len(self.server.messages()), 120)

    @NEEDS_TESTSUBMIT
    def test_events_are_published(self):
        server = QueueServer(self, queue_extra='retry_min = "1h";')
        server.transport("reply", "bad.test", "550", "5.1.1", "unknown")
        server.transport("reply", "slow.test", "451", "4.4.1", "later")
        queue_id = server.submit("", ["alice@example.test", "x@bad.test", "y@slow.test"],
                                 message_bytes("events"))
        server.wait_messages(1)

        def counts():
            out = server.ctl_ok("testsubmit", "events")
            return dict(line.split() for line in out.splitlines() if line.startswith("queue."))
        wait_until(lambda: counts()["queue.deferred"] == "1" and counts()["queue.bounced"] == "1",
                   what="the events")
        self.assertEqual(counts(), {"queue.accepted": "1", "queue.delivered": "1",
                                    "queue.deferred": "1", "queue.bounced": "1",
                                    "queue.expired": "0"})
        self.server.daemon.stop()
        # A local delivery names the Maildir it went into.
        server.submit("bob@example.test", ["alice@example.test"], message_bytes("second"))
        wait_until(lambda: counts()["queue.delivered"] == "2", what="the second delivery")
        last = server.ctl_ok("testsubmit", "events").splitlines()[-1]
        self.assertIn("last queue.delivered", last)
        self.assertIn("recipient=<alice@example.test> local=1 mailbox=" + server.maildir(), last)
        self.assertIn("code=250 status=2.0.0", last)
        self.assertIn(queue_id[:8], server.daemon.log())

    def test_bus_topics_declared(self):
        out = self.server.ctl_ok("--json", "bus")
        for topic in ("queue.accepted", "queue.delivered", "queue.deferred", "queue.bounced",
                      "queue.expired"):
            self.assertIn(topic, out)
        self.assertIn("postern_ev_queue", out)

    def test_over_quota_is_deferred_with_a_reason(self):
        self.server.daemon.stop()
        server = QueueServer(self, queue_extra='quota_bytes = "1k";')
        big = message_bytes("big", "x" * 3000)
        queue_id = server.submit("bob@example.test", ["alice@example.test"], big)
        message = wait_until(lambda: (m := server.message(queue_id)) and
                             m["recipients"][0]["attempts"] >= 1 and m, what="an attempt")
        rcpt = message["recipients"][0]
        self.assertEqual(message["state"], "deferred")
        self.assertEqual(rcpt["last_result"]["code"], 452)
        self.assertEqual(rcpt["last_result"]["status"], "4.2.2")
        self.assertIn("mailbox full", rcpt["last_result"]["text"])
        self.assertEqual(server.messages(), [])


@NEEDS_TESTSUBMIT
class QueueView(unittest.TestCase):
    """Every message in every state is listed; hold, release, delete, flush."""

    def setUp(self):
        self.server = QueueServer(self, queue_extra='retry_min = "1h"; retry_max = "2h";')
        self.server.transport("reply", "*", "451", "4.4.1", "remote busy")

    def deferred(self, rcpt="carol@remote.test", sender="bob@example.test"):
        queue_id = self.server.submit(sender, [rcpt], message_bytes("deferred"))
        wait_until(lambda: (m := self.server.message(queue_id)) and m["state"] == "deferred",
                   what="the message to be deferred")
        return queue_id

    def test_deferred_is_listed_with_error_and_next_attempt(self):
        queue_id = self.deferred()
        message = self.server.message(queue_id)
        self.assertEqual(message["sender"], "bob@example.test")
        [rcpt] = message["recipients"]
        self.assertEqual(rcpt["address"], "carol@remote.test")
        self.assertEqual(rcpt["state"], "pending")
        self.assertEqual(rcpt["attempts"], 1)
        self.assertEqual(rcpt["last_result"],
                         {"code": 451, "status": "4.4.1", "text": "remote busy",
                          "remote_mta": "mx.remote.test"})
        self.assertIsNotNone(rcpt["next_attempt"])
        self.assertIsNotNone(rcpt["last_attempt"])
        text = self.server.ctl_ok("queue", "list")
        self.assertIn(queue_id, text)
        self.assertIn("deferred", text)
        self.assertIn("451 4.4.1 remote busy (mx.remote.test)", text)
        self.assertIn("1 message in the queue", text)

    def test_show(self):
        queue_id = self.deferred()
        out = self.server.ctl_ok("queue", "show", queue_id.lower())
        self.assertIn(f"id: {queue_id}", out)
        self.assertIn("sender: <bob@example.test>", out)
        self.assertIn("Subject: deferred", out)
        self.assertIn("<carol@remote.test> pending", out)
        shown = json.loads(self.server.ctl_ok("--json", "queue", "show", queue_id))
        self.assertIn("Subject: deferred", shown["headers"])
        self.assertEqual(shown["message"]["id"], queue_id)
        status, _, err = self.server.ctl("queue", "show", "0000000000000000")
        self.assertEqual(status, 1)
        self.assertIn("no message", err)

    def test_flush_retries_now_and_delivers_once_the_remote_is_back(self):
        queue_id = self.deferred()
        before = self.server.transport_stats()["requests"]
        self.server.ctl_ok("queue", "flush", queue_id)
        wait_until(lambda: self.server.message(queue_id)["recipients"][0]["attempts"] == 2,
                   what="a second attempt")
        self.assertEqual(self.server.transport_stats()["requests"], before + 1)
        self.server.transport("reply", "*", "250", "2.0.0", "ok")
        self.server.ctl_ok("queue", "flush")
        self.server.wait_queue_empty()
        [raw] = self.server.remote_messages()
        self.assertIn(b"Subject: deferred\r\n", raw)
        self.assertRegex(self.server.daemon.log(), queue_id + r": to=<carol@remote.test>, "
                         r"relay=mx.remote.test, .*attempts=3, .*status=sent")

    def test_hold_release(self):
        queue_id = self.deferred()
        self.assertIn("held", self.server.ctl_ok("queue", "hold", queue_id))
        self.assertEqual(self.server.message(queue_id)["state"], "held")
        self.server.transport("reply", "*", "250", "2.0.0", "ok")
        self.server.ctl_ok("queue", "flush")
        time.sleep(0.5)
        self.assertEqual(self.server.message(queue_id)["state"], "held")
        self.assertEqual(self.server.message(queue_id)["recipients"][0]["attempts"], 1)
        status, _, err = self.server.ctl("queue", "flush", queue_id)
        self.assertEqual(status, 1)
        self.assertIn("held", err)
        self.server.ctl_ok("queue", "release", queue_id)
        self.server.wait_queue_empty()
        self.assertEqual(len(self.server.remote_messages()), 1)

    def test_delete(self):
        queue_id = self.deferred()
        self.server.ctl_ok("queue", "delete", queue_id)
        self.assertIsNone(self.server.message(queue_id))
        wait_until(lambda: os.listdir(os.path.join(self.server.queue_dir, "queue")) == [],
                   what="the files to go")
        time.sleep(0.3)
        self.assertEqual(self.server.messages("bob"), [])   # no notice
        status, _, err = self.server.ctl("queue", "delete", queue_id)
        self.assertEqual(status, 1)

    def test_delete_bounce_notifies_the_sender(self):
        queue_id = self.deferred()
        self.server.ctl_ok("queue", "delete", queue_id, "--bounce")
        [raw] = self.server.wait_messages(1, "bob")
        msg, human, per_message, [rcpt], returned = parse_dsn(raw)
        self.assertEqual(rcpt["Action"], "failed")
        self.assertEqual(rcpt["Status"], "5.0.0")
        self.assertIn("deleted by the mail system administrator", rcpt["Diagnostic-Code"])
        self.server.wait_queue_empty()
        self.assertRegex(self.server.daemon.log(), queue_id + r": to=<carol@remote.test>.*"
                         r"status=bounced")

    def test_a_file_removed_by_hand_is_listed_not_retried(self):
        queue_id = self.deferred()
        os.unlink(os.path.join(self.server.queue_dir, "queue", f"{queue_id}.msg"))
        self.server.ctl_ok("queue", "flush")
        message = wait_until(lambda: (m := self.server.message(queue_id)) and
                             m["state"] == "quarantined" and m, what="the quarantine")
        self.assertIn("vanished", message["reason"])
        self.assertIn(f"{queue_id}: quarantined", self.server.daemon.log())
        self.server.ctl_ok("queue", "delete", queue_id)
        self.assertEqual(self.server.queue_list(), [])

    def test_receiving_is_listed(self):
        client = TestSubmitClient(self.server.port)
        self.addCleanup(client.close)
        client._command("MAIL bob@example.test")
        client._command("RCPT alice@example.test")
        self.assertTrue(client._command("DATA 100").startswith("+OK"))
        client.file.write(b"Subject: half\r\n")
        client.file.flush()
        message = wait_until(lambda: [m for m in self.server.queue_list()
                                      if m["state"] == "receiving" and m["size"] == 15],
                             what="the message being received")[0]
        self.assertEqual(message["sender"], "bob@example.test")
        self.assertEqual(message["recipients"][0]["address"], "alice@example.test")
        self.assertIn("receiving", self.server.ctl_ok("queue", "list"))
        # The client vanishes: nothing of it remains.
        client.close()
        wait_until(lambda: self.server.queue_list() == [], what="the aborted message to go")
        self.assertEqual(self.server.incoming_leftovers(), [])
        self.assertEqual(self.server.messages(), [])

    def test_bad_commands(self):
        for args in (("queue",), ("queue", "frobnicate"), ("queue", "hold"),
                     ("queue", "delete", "X", "--now"), ("queue", "release", "nope")):
            status, _, err = self.server.ctl(*args)
            self.assertEqual(status, 1, args)
            self.assertTrue(err.strip(), args)
        self.assertIn("queue list", self.server.ctl_ok("help"))


@NEEDS_TESTSUBMIT
class RemoteDelivery(unittest.TestCase):
    def test_grouped_by_domain_and_results_per_recipient(self):
        server = QueueServer(self, queue_extra='retry_min = "1h"; retry_max = "2h";')
        server.transport("reply", "bad@remote.test", "550", "5.1.1", "no such user")
        server.transport("reply", "slow.test", "451", "4.3.2", "not now")
        queue_id = server.submit("alice@example.test",
                                 ["good@remote.test", "bad@remote.test", "x@slow.test",
                                  "bob@example.test"], message_bytes("mixed"))
        message = wait_until(lambda: (m := server.message(queue_id)) and
                             m["state"] == "deferred" and m, what="the first attempt")
        states = {r["address"]: r["state"] for r in message["recipients"]}
        self.assertEqual(states, {"good@remote.test": "delivered", "bad@remote.test": "bounced",
                                  "x@slow.test": "pending", "bob@example.test": "delivered"})
        self.assertEqual(server.transport_stats()["requests"], 2)   # remote.test, slow.test
        # The sender hears about the bounce now, not when the message is done.
        [raw] = server.wait_messages(1, "alice")
        _, _, _, [rcpt], _ = parse_dsn(raw)
        self.assertEqual(rcpt["Final-Recipient"], "rfc822; bad@remote.test")
        self.assertEqual(rcpt["Status"], "5.1.1")
        self.assertEqual(rcpt["Remote-MTA"], "dns; mx.remote.test")

    def test_without_transport_remote_recipients_wait(self):
        server = QueueServer(self, transport=False, queue_extra='retry_min = "1h";'
                             'retry_max = "2h";')
        queue_id = server.submit("bob@example.test", ["carol@remote.test"], message_bytes())
        message = wait_until(lambda: (m := server.message(queue_id)) and
                             m["state"] == "deferred" and m, what="a deferral")
        self.assertEqual(message["recipients"][0]["last_result"]["text"],
                         "no SMTP transport module loaded")
        self.assertIn("no SMTP transport module loaded", server.daemon.log())

    def test_4xx_then_5xx(self):
        server = QueueServer(self, queue_extra='retry_min = "1s"; retry_max = "1s";')
        server.transport("reply", "*", "421", "4.4.2", "closing")
        queue_id = server.submit("bob@example.test", ["carol@remote.test"], message_bytes())
        wait_until(lambda: (m := server.message(queue_id)) and
                   m["recipients"][0]["attempts"] >= 1, what="a first attempt")
        server.transport("reply", "*", "554", "5.7.1", "go away")
        [raw] = server.wait_messages(1, "bob", timeout=20)
        _, _, _, [rcpt], _ = parse_dsn(raw)
        self.assertEqual(rcpt["Status"], "5.7.1")
        self.assertIn("554 5.7.1 go away", rcpt["Diagnostic-Code"])
        server.wait_queue_empty()


class Restart(unittest.TestCase):
    @NEEDS_TESTSUBMIT
    def test_restart_changes_nothing_but_time(self):
        server = QueueServer(self, queue_extra='retry_min = "1h"; retry_max = "2h";')
        server.transport("reply", "*", "451", "4.4.1", "remote busy")
        ids = [server.submit("bob@example.test", [f"u{i}@remote.test"],
                             message_bytes(f"m{i}")) for i in range(3)]
        wait_until(lambda: all(m["state"] == "deferred" for m in server.queue_list()),
                   what="all deferred")
        server.ctl_ok("queue", "hold", ids[1])
        before = server.queue_list()
        server.daemon.stop()
        server.start()
        after = server.queue_list()
        self.assertEqual(self.comparable(before), self.comparable(after))
        self.assertEqual(server.message(ids[1])["state"], "held")
        # Retries keep their schedule: no attempt right after the restart.
        time.sleep(0.5)
        self.assertEqual(server.transport_stats()["requests"], 0)
        log = server.daemon.log()
        self.assertIn("3 messages loaded, 0 quarantined", log)

    @staticmethod
    def comparable(messages):
        keep = ("id", "state", "sender", "size", "arrival", "held")
        return [({k: m[k] for k in keep},
                 [(r["address"], r["state"], r["attempts"], r["next_attempt"], r["last_result"])
                  for r in m["recipients"]]) for m in messages]

    def test_kill9_then_restart_delivers_what_was_queued(self):
        server = QueueServer(self, queue_extra='retry_min = "1h";')
        server.daemon.stop()
        # Queue while the transport... simply: submit, kill at once, restart.
        server.start()
        ids = [server.submit("bob@example.test", ["alice@example.test"], message_bytes(f"k{i}"))
               for i in range(5)]
        server.daemon.kill()
        server.start()
        server.wait_messages(5, timeout=20)
        server.wait_queue_empty()
        time.sleep(0.3)
        bodies = server.messages()
        self.assertEqual(len(bodies), 5)
        for i in range(5):
            self.assertEqual(sum(b"Subject: k%d\n" % i in b for b in bodies), 1)
        self.assertEqual(len(set(ids)), 5)

    def test_torn_and_stray_files_are_quarantined_and_listed(self):
        server = QueueServer(self, queue_extra='retry_min = "1h";')
        server.submit("bob@example.test", ["alice@example.test"], message_bytes("good"))
        server.wait_messages(1)
        server.daemon.stop()
        qdir = os.path.join(server.queue_dir, "queue")
        # A torn message (cut in the body) and a damaged one (a flipped byte).
        good = message_bytes("will be torn", "z" * 500)
        raw = self.queue_file("6B0230F387D60D11", good)
        with open(os.path.join(qdir, "6B0230F387D60D11.msg"), "wb") as f:
            f.write(raw[:len(raw) - 60])
        damaged = bytearray(self.queue_file("6B0230F387D60D12", good))
        damaged[len(damaged) // 2] ^= 1
        with open(os.path.join(qdir, "6B0230F387D60D12.msg"), "wb") as f:
            f.write(damaged)
        with open(os.path.join(qdir, "6B0230F387D60D13.msg"), "wb") as f:
            f.write(self.queue_file("6B0230F387D60D13", good))
        with open(os.path.join(qdir, "stray.txt"), "w") as f:
            f.write("junk")
        # Junk in incoming/ is an unfinished reception: removed.
        with open(os.path.join(server.queue_dir, "incoming", "6B0230F387D60D14"), "w") as f:
            f.write("POSTERN-QUEUE 1\n")
        server.start()
        # The intact hand-made file is delivered; the others never are.
        server.wait_messages(2)
        listed = {m["id"]: m for m in server.queue_list()}
        self.assertEqual(set(listed), {"6B0230F387D60D11", "6B0230F387D60D12", "stray.txt"})
        for queue_id in listed:
            self.assertEqual(listed[queue_id]["state"], "quarantined")
        self.assertIn("end marker", listed["6B0230F387D60D11"]["reason"])
        self.assertIn("checksum", listed["6B0230F387D60D12"]["reason"])
        self.assertEqual(listed["6B0230F387D60D11"]["file"], "queue/6B0230F387D60D11.bad")
        log = server.daemon.log()
        self.assertIn("6B0230F387D60D11: quarantined, never delivered", log)
        self.assertIn("1 unfinished receptions", log)
        self.assertEqual(sum(b"will be torn" in m for m in server.messages()), 1)
        # Still listed after another restart; deletable.
        server.daemon.stop()
        server.start()
        self.assertEqual(len(server.queue_list()), 3)
        server.ctl_ok("queue", "delete", "6B0230F387D60D11")
        server.ctl_ok("queue", "delete", "stray.txt")
        self.assertEqual({m["id"] for m in server.queue_list()}, {"6B0230F387D60D12"})
        self.assertFalse(os.path.exists(os.path.join(qdir, "6B0230F387D60D11.bad")))
        self.assertFalse(os.path.exists(os.path.join(qdir, "stray.txt")))

    @staticmethod
    def queue_file(queue_id, body):
        """A queue file as qfile.c writes it (format version 1)."""
        header = (f"POSTERN-QUEUE 1\nid +{queue_id}\narrival {int(time.time() * 1000)}\n"
                  "kind normal\nsender +bob@example.test\nret default\nenvid -\nbody 7bit\n"
                  "smtputf8 0\nclient -\nhelo -\nauth -\nby +test\n"
                  "rcpt 0 - +alice@example.test\n\n").encode()
        data = header + body
        crc = crc32c(data)
        return data + b"\nPOSTERN-END %016X %08X\n" % (len(body), crc)

    def test_second_daemon_on_the_same_queue_is_refused(self):
        server = QueueServer(self)
        other = Posternd(self, f"""modules = ("queue-store");
queue-store = {{ queue_dir = "{server.queue_dir}"; }};
""", name="other")
        proc = subprocess.run(other.args("-F"), capture_output=True, text=True, timeout=30)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn(f"queue_dir {server.queue_dir} is in use by another posternd (pid "
                      f"{server.daemon.pid})", proc.stdout + proc.stderr)
        # The first one is not disturbed.
        server.submit("bob@example.test", ["alice@example.test"], message_bytes())
        server.wait_messages(1)


class Reload(unittest.TestCase):
    @NEEDS_TESTSUBMIT
    def test_limits_apply_at_once_schedule_kept_threads_at_restart(self):
        extra = 'retry_min = "1h"; retry_max = "2h";'
        server = QueueServer(self, queue_extra=extra)
        server.transport("reply", "*", "451", "4.4.1", "remote busy")
        queue_id = server.submit("bob@example.test", ["carol@remote.test"], message_bytes("d"))
        wait_until(lambda: server.message(queue_id)["state"] == "deferred", what="deferred")
        before = server.message(queue_id)
        server.reload(extra + ' max_message_size = 1000; delivery_threads = 7;')
        with self.assertRaises(SubmitError) as caught:
            server.submit("bob@example.test", ["alice@example.test"],
                          message_bytes("big", "z" * 2000))
        self.assertIn("max_message_size", str(caught.exception) + server.daemon.log())
        server.daemon.wait_log(
            "reload: delivery_threads changes only at restart; keeping the running value")
        # The queued message keeps its place and its schedule: no retry now.
        after = server.message(queue_id)
        self.assertEqual(after["state"], "deferred")
        self.assertEqual(after["recipients"][0]["next_attempt"],
                         before["recipients"][0]["next_attempt"])
        self.assertEqual(server.transport_stats()["requests"], 1)
        # A small message still goes through.
        server.submit("bob@example.test", ["alice@example.test"], message_bytes("small"))
        server.wait_messages(1)


class Shutdown(unittest.TestCase):
    @NEEDS_TESTSUBMIT
    def test_graceful_stop_with_work_in_flight(self):
        server = QueueServer(self, queue_extra='retry_min = "1h";', transport_extra='delay = "3s";')
        ids = [server.submit("bob@example.test", ["carol@remote.test", "alice@example.test"],
                             message_bytes(f"stop{i}")) for i in range(3)]
        wait_until(lambda: server.transport_stats()["requests"] == 3, what="remote attempts")
        started = time.monotonic()
        self.assertEqual(server.daemon.stop(), 0)
        self.assertLess(time.monotonic() - started, 3)   # the remote attempts were cancelled
        self.assertEqual(server.daemon.sanitizer_report(), None)
        server.start()
        # Local copies went out before the stop; the remote ones are still due.
        self.assertEqual(len(server.messages()), 3)
        self.assertEqual(sorted(server.queue_ids()), sorted(ids))
        for message in server.queue_list():
            states = {r["address"]: r["state"] for r in message["recipients"]}
            self.assertEqual(states, {"carol@remote.test": "pending",
                                      "alice@example.test": "delivered"})
        server.transport("reply", "*", "250", "2.0.0", "ok")
        server.wait_queue_empty(timeout=20)
        self.assertEqual(len(server.messages()), 3)


def crc32c(data):
    crc = 0xffffffff
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff


class FullDisk(unittest.TestCase):
    """A full disk answers an error and keeps nothing partial."""

    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix="postern-queue-tmpfs-")
        self.addCleanup(shutil.rmtree, self.mnt, True)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs",
                               self.mnt], capture_output=True, text=True)
        if proc.returncode != 0:
            self.skipTest(f"cannot mount a small tmpfs (needs root): {proc.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt], capture_output=True)

    def test_full_disk(self):
        qdir = os.path.join(self.mnt, "q")
        server = QueueServer(self, queue_dir=qdir, queue_extra='retry_min = "1h";',
                             transport=submit_mode() == "testsubmit")
        with self.assertRaises(SubmitError) as caught:
            server.submit("bob@example.test", ["alice@example.test"],
                          message_bytes("huge", "y" * 400000))
        self.assertIn("disk full", str(caught.exception).lower() + server.daemon.log().lower())
        self.assertEqual(incoming_leftovers(qdir), [])
        self.assertEqual(os.listdir(os.path.join(qdir, "queue")), [])
        self.assertEqual(server.queue_list(), [])
        # A message that fits still goes through.
        server.submit("bob@example.test", ["alice@example.test"], message_bytes("small"))
        server.wait_messages(1)


class Docs(unittest.TestCase):
    """The README and the man page list every key of the settings table
    with its default (the C table is the truth)."""

    def test_every_key_documented(self):
        from docs_util import assert_module_documented
        assert_module_documented(self, "queue-store", [os.path.join("modules", "queue-store", "module.c")], 15)


if __name__ == "__main__":
    unittest.main()
