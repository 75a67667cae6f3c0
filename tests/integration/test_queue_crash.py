"""Crash test of the queue-store module: several concurrent submitters while
posternd is killed with SIGKILL at random moments, many times, then
restarted. What must hold:

  - every message that got its OK (the commit's done(0), the 250 of SMTP)
    is delivered, exactly once, to each local recipient;
  - no message whose data was not completely handed over is ever delivered;
  - a message handed over completely whose answer was lost in the crash
    (the fsync may or may not have happened) is delivered at most once;
  - until it is delivered, each acknowledged message is listed by
    `posternctl queue list --json` after every restart;
  - nothing is quarantined, unfinished receptions are removed at each
    start, and no lock outlives its process (every restart succeeds).

The submission path is pluggable (queue_util.py): testsubmit by default,
the smtp module with POSTERN_QUEUE_SUBMIT=smtp.
"""
import os
import random
import re
import threading
import time
import unittest

from queue_util import QueueServer, SubmitError, incoming_leftovers, message_bytes, wait_until

CYCLES = int(os.environ.get("POSTERN_CRASH_CYCLES", "12"))
SUBMITTERS = 6
TOKEN = re.compile(rb"Subject: (crash-\d+-\d+)\n")


class Ledger:
    """What each submitter knows about its messages."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}        # token -> (queue id, recipients)
        self.uncertain = {}    # token -> recipients: all data sent, no answer
        self.not_sent = set()  # tokens whose data never got through
        self.attempts = 0

    def record(self, kind, token, rcpts, queue_id=None):
        with self.lock:
            self.attempts += 1
            if kind == "acked":
                self.acked[token] = (queue_id, rcpts)
            elif kind == "uncertain":
                self.uncertain[token] = rcpts
            else:
                self.not_sent.add(token)


class Submitter(threading.Thread):
    def __init__(self, server, number, ledger, stop):
        super().__init__(daemon=True)
        self.server = server
        self.number = number
        self.ledger = ledger
        self.stop = stop
        self.rng = random.Random(number)
        self.count = 0

    def run(self):
        while not self.stop.is_set():
            try:
                client = self.server.client_unregistered()
            except (SubmitError, OSError):
                time.sleep(0.02)
                continue
            try:
                while not self.stop.is_set():
                    self.submit_one(client)
            except (SubmitError, OSError, ConnectionError):
                pass
            finally:
                client.close()

    def submit_one(self, client):
        self.count += 1
        token = f"crash-{self.number}-{self.count}"
        rcpts = ["alice@example.test"] if self.count % 3 else ["alice@example.test",
                                                             "bob@example.test"]
        data = message_bytes(token, f"body of {token}\r\n" + "x" * self.rng.randint(0, 20000))
        # Now and then a client that hangs up in the middle of the data.
        stop_after = self.rng.randint(1, len(data) - 1) if self.rng.random() < 0.1 else None
        try:
            queue_id = client.submit("bob@example.test", rcpts, data, stop_after=stop_after)
        except SubmitError as err:
            self.ledger.record("uncertain" if err.maybe_queued else "not_sent", token, rcpts)
            raise
        self.ledger.record("acked", token, rcpts, queue_id)


class CrashTest(unittest.TestCase):
    def delivered(self, server):
        """token -> number of copies, per user."""
        counts = {}
        for user in ("alice", "bob"):
            for raw in server.messages(user):
                match = TOKEN.search(raw)
                self.assertIsNotNone(match, raw[:300])
                key = (match.group(1).decode(), user)
                counts[key] = counts.get(key, 0) + 1
        return counts

    def check_listed_or_delivered(self, server, ledger):
        """After a restart: each acknowledged message is listed or delivered.
        Order matters: what was acknowledged so far, then the list, then the
        mailboxes (a message delivered after the list is in the mailbox)."""
        with ledger.lock:
            acked = dict(ledger.acked)
        listed = {m["id"]: m for m in server.queue_list()}
        for message in listed.values():
            self.assertNotEqual(message["state"], "quarantined", message)
        delivered = self.delivered(server)
        for token, (queue_id, rcpts) in acked.items():
            for rcpt in rcpts:
                user = rcpt.split("@")[0]
                if (token, user) in delivered:
                    continue
                self.assertIn(queue_id, listed,
                              f"{token} ({queue_id}) acknowledged, neither listed nor "
                              f"delivered to {user}")

    def test_sigkill_at_random_moments(self):
        server = QueueServer(self, queue_extra='retry_min = "1s"; retry_max = "2s";',
                             transport=False)
        ledger = Ledger()
        stop = threading.Event()
        rng = random.Random(4711)
        threads = [Submitter(server, n, ledger, stop) for n in range(SUBMITTERS)]
        for thread in threads:
            thread.start()
        try:
            for cycle in range(CYCLES):
                time.sleep(rng.uniform(0.05, 0.6))
                server.daemon.kill()
                # Sometimes the submitters pile up while it is down.
                time.sleep(rng.choice((0, 0, 0.1)))
                server.start()
                self.check_listed_or_delivered(server, ledger)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        self.assertFalse(any(thread.is_alive() for thread in threads))
        self.assertGreater(len(ledger.acked), 50, "too few messages got through to test much")

        server.wait_queue_empty(timeout=60)
        time.sleep(0.5)
        delivered = self.delivered(server)
        expected = set()
        for token, (queue_id, rcpts) in ledger.acked.items():
            for rcpt in rcpts:
                key = (token, rcpt.split("@")[0])
                expected.add(key)
                self.assertEqual(delivered.get(key, 0), 1,
                                 f"{token} ({queue_id}) to {rcpt}: acknowledged, delivered "
                                 f"{delivered.get(key, 0)} times")
        uncertain_delivered = 0
        for token, rcpts in ledger.uncertain.items():
            for rcpt in rcpts:
                key = (token, rcpt.split("@")[0])
                expected.add(key)
                self.assertLessEqual(delivered.get(key, 0), 1, f"{token} delivered twice")
                uncertain_delivered += delivered.get(key, 0)
        for token in ledger.not_sent:
            for user in ("alice", "bob"):
                self.assertNotIn((token, user), delivered,
                                 f"{token} was never completely sent but was delivered")
        self.assertEqual(set(delivered) - expected, set())
        self.assertEqual(server.queue_list(), [])
        self.assertEqual(incoming_leftovers(server.queue_dir), [])
        self.assertEqual(os.listdir(os.path.join(server.queue_dir, "queue")), [])
        self.assertEqual(server.daemon.log().count("unfinished receptions"), CYCLES + 1)
        print(f"\n  crash test: {CYCLES} kills, {ledger.attempts} submissions, "
              f"{len(ledger.acked)} acknowledged (each delivered once), "
              f"{len(ledger.uncertain)} unanswered ({uncertain_delivered} of their copies "
              f"delivered), {len(ledger.not_sent)} never completed (none delivered)")


if __name__ == "__main__":
    unittest.main()
