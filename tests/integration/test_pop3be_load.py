"""pop3be with big mailboxes and concurrent work: 100,000 messages (STAT,
LIST and UIDL answer within seconds without reading a message body),
deliveries racing with sessions (UIDL -> content never changes), and many
sessions of different users at once."""
import hashlib
import os
import poplib
import threading
import time
import unittest

from pop3util import Pop3Server, crlf_form, retr_bytes

poplib._MAXLINE = 1 << 20


def proc_rchar(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


def generate_maildir(root, count, body_size=600):
    """Write `count` messages straight into new/, named like Dovecot and
    the mailstore name them (,S= and ,W= sizes), as fast as possible."""
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    new = os.path.join(root, "new")
    now = int(time.time())
    filler = b"z" * (body_size - 80) + b"\n"
    for i in range(count):
        data = b"Subject: message %d\nX-N: %d\n\n" % (i, i) + filler
        name = "%d.M%dP1Q%d.loadtest,S=%d,W=%d" % (now, i, i, len(data), len(crlf_form(data)))
        fd = os.open(os.path.join(new, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, data)
        os.close(fd)


class HugeMailbox(unittest.TestCase):
    def test_100000_messages(self):
        server = Pop3Server(self, extra='idle_timeout = "5m";')
        count = 100000
        generate_maildir(server.maildir(), count)
        pid = server.daemon.pid
        rchar_before = proc_rchar(pid)

        start = time.monotonic()
        client = server.pop(timeout=60)
        login_time = time.monotonic() - start
        start = time.monotonic()
        self.assertEqual(client.stat()[0], count)
        resp, listing, _ = client.list()
        resp, uidls, _ = client.uidl()
        list_time = time.monotonic() - start
        self.assertEqual(len(listing), count)
        self.assertEqual(len(uidls), count)
        self.assertEqual(len(set(u.split()[1] for u in uidls)), count)
        read_during_listing = proc_rchar(pid) - rchar_before
        # bodies are 60 MB; the uid list is about 6 MB
        self.assertLess(read_during_listing, 20 * 1024 * 1024,
                        f"read {read_during_listing} bytes: message bodies were read")
        self.assertLess(login_time, 15, "first login (UIDs for 100,000 messages)")
        self.assertLess(list_time, 5, "STAT + LIST + UIDL")

        data, _ = retr_bytes(client, 54321)
        self.assertIn(b"X-N: ", data)
        client.dele(1)
        client.dele(count)
        client.quit()

        # a fresh session of an already indexed mailbox is fast
        start = time.monotonic()
        client = server.pop(timeout=60)
        self.assertEqual(client.stat()[0], count - 2)
        resp, uidls2, _ = client.uidl()
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 5, "second login + STAT + UIDL")
        self.assertEqual([u.split()[1] for u in uidls2],
                         [u.split()[1] for u in uidls[1:-1]])
        client.quit()
        print(f"\n    100,000 messages: first login {login_time:.2f}s, STAT+LIST+UIDL "
              f"{list_time:.2f}s, second login+UIDL {elapsed:.2f}s, "
              f"read {read_during_listing // 1024} KiB while listing")


class Concurrency(unittest.TestCase):
    def test_deliveries_racing_with_sessions(self):
        server = Pop3Server(self)
        stop = threading.Event()
        delivered = []
        errors = []

        def deliver():
            i = 0
            while not stop.is_set() and i < 150:
                message = b"Subject: race %d\n\n%s\n" % (i, hashlib.sha256(b"%d" % i).hexdigest().encode())
                try:
                    server.deliver(message)
                except AssertionError as e:
                    errors.append(e)
                    return
                delivered.append(message)
                i += 1

        thread = threading.Thread(target=deliver)
        thread.start()
        seen = {}
        try:
            for _ in range(15):
                client = server.pop()
                count = client.stat()[0]
                resp, uidls, _ = client.uidl()
                self.assertEqual(len(uidls), count)
                for line in uidls[-5:]:
                    num, uid = line.split()
                    data, _ = retr_bytes(client, int(num))
                    if uid in seen:
                        self.assertEqual(seen[uid], data, "a UIDL changed its message")
                    seen[uid] = data
                client.quit()
        finally:
            stop.set()
            thread.join(timeout=60)
        self.assertEqual(errors, [])
        client = server.pop()
        self.assertEqual(client.stat()[0], len(delivered))
        contents = sorted(retr_bytes(client, i + 1)[0] for i in range(len(delivered)))
        self.assertEqual(contents, sorted(crlf_form(m) for m in delivered))
        client.quit()

    def test_many_users_at_once(self):
        users = {f"u{i}@example.test": f"pw{i}" for i in range(30)}
        server = Pop3Server(self, users=users)
        for user in users:
            for j in range(3):
                server.deliver(b"Subject: %s %d\n\nhello\n" % (user.encode(), j), user=user)
        errors = []

        def session(user):
            try:
                for _ in range(3):
                    client = poplib.POP3("127.0.0.1", server.port, timeout=20)
                    client.user(user)
                    client.pass_(users[user])
                    count, _ = client.stat()
                    for k in range(1, count + 1):
                        data, _ = retr_bytes(client, k)
                        if user.encode() not in data:
                            errors.append(f"{user} got someone else's mail")
                    client.quit()
            except Exception as e:  # noqa: BLE001 - collected and reported
                errors.append(f"{user}: {e!r}")

        threads = [threading.Thread(target=session, args=(u,)) for u in users]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertEqual(errors, [])
        status, out, _ = server.daemon.ctl("pop3be", "stats")
        self.assertRegex(out, r"logins 90\b")


if __name__ == "__main__":
    unittest.main()
