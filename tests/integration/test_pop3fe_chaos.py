"""The failover chaos test: pop3fe must survive anything its back-ends do.

Two real pop3be daemons share one mail storage (pool "default"); four fake
back-ends (pool "chaos") flap between working and broken: accepting and
never answering, answering garbage, resetting, trickling a byte a second,
and breaking the same ways in the middle of a RETR. 130 client threads
retrieve mail with poplib the whole time while one pop3be is SIGKILLed and
restarted again and again (the other always stays up).

Pass: pop3fe never exits; its fd count and RSS come back near the baseline
after the storm; no client operation waits longer than the configured
timeouts allow; after every kill, a login whose primary was the dead
back-end succeeds within 1 s; once the killed back-end is back, its users
return to it. Bounded: about a minute.
"""
import os
import poplib
import random
import signal
import socket
import threading
import time
import unittest

from harness import wait_for
from pop3fake import FakeBackend
from pop3fe_util import Pop3feCase
from test_pop3fe_pop3be import HAVE_POP3BE, Backends, mail

STORM_SECONDS = float(os.environ.get("POP3FE_CHAOS_SECONDS", "40"))
DEFAULT_USERS = 100
CHAOS_USERS = 30

CONNECT_TIMEOUT = 1.0
LOGIN_TIMEOUT = 1.5
BACKEND_TIMEOUT = 2.0
MAX_ATTEMPTS = 3
# The longest any single client call may wait: a login tries at most
# MAX_ATTEMPTS back-ends, each bounded by connect + login timeouts; a
# command after login by the back-end watchdog (+ its granularity).
SLACK = 1.5
LOGIN_BOUND = MAX_ATTEMPTS * (CONNECT_TIMEOUT + LOGIN_TIMEOUT) + SLACK
COMMAND_BOUND = BACKEND_TIMEOUT + 0.5 + SLACK


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {"default": 0, "chaos": 0}
        self.errors = {}
        self.slowest = {"login": 0.0, "command": 0.0}
        self.violations = []

    def timed(self, kind, what, call, *args):
        started = time.monotonic()
        try:
            return call(*args)
        finally:
            elapsed = time.monotonic() - started
            bound = LOGIN_BOUND if kind == "login" else COMMAND_BOUND
            with self.lock:
                self.slowest[kind] = max(self.slowest[kind], elapsed)
                if elapsed > bound:
                    self.violations.append(f"{what} took {elapsed:.2f}s (bound {bound:.1f}s)")

    def error(self, error):
        name = type(error).__name__
        text = str(error)
        if "[IN-USE]" in text:
            name = "in-use"
        elif "[SYS/TEMP]" in text:
            name = "sys-temp"
        with self.lock:
            self.errors[name] = self.errors.get(name, 0) + 1


def client_loop(port, user, pool, stats, stop):
    password = user.split("@")[0]
    while not stop.is_set():
        client = None
        try:
            client = stats.timed("login", "connect+greeting", poplib.POP3, "127.0.0.1", port,
                                 30)
            stats.timed("login", "USER", client.user, user)
            stats.timed("login", "PASS", client.pass_, password)
            count = stats.timed("command", "STAT", client.stat)[0]
            for i in range(1, count + 1):
                # A user's think time: sessions overlap, as they do.
                time.sleep(random.uniform(0.1, 0.3))
                lines = stats.timed("command", "RETR", client.retr, i)[1]
                if not lines:
                    raise AssertionError("empty message")
            stats.timed("command", "QUIT", client.quit)
            client = None
            with stats.lock:
                stats.ok[pool] += 1
        except (poplib.error_proto, OSError, EOFError, AssertionError) as error:
            stats.error(error)
            time.sleep(0.05)
        finally:
            if client is not None:
                try:
                    client.close()
                except Exception:
                    pass


def write_maildir(root, messages):
    """Messages straight into new/ (fast; pop3be picks them up)."""
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for i, data in enumerate(messages):
        with open(os.path.join(root, "new", f"{1700000000 + i}.M{i}P1.chaos"), "wb") as f:
            f.write(data)


def sanitized(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


@unittest.skipUnless(HAVE_POP3BE, "pop3be is not built")
class Chaos(Pop3feCase):
    def setUp(self):
        users = [f"user{i:03d}@example.test" for i in range(DEFAULT_USERS)] + ["probe@example.test"]
        self.real = Backends(self, count=2,
                             extra='auth_failure_delay = "10ms"; mailbox_threads = 4;',
                             users={u: u.split("@")[0] for u in users})
        for user in users:
            write_maildir(self.real.maildir(user), [mail(n, 4000) for n in range(2)])
        lines = []
        for user in users[:-1]:
            lines.append(f"{user}:{{PLAIN}}{user.split('@')[0]}")
        lines.append("probe@example.test:{PLAIN}probe::::::host=be1")
        for i in range(CHAOS_USERS):
            lines.append(f"chaos{i:03d}@example.test:{{PLAIN}}chaos{i:03d}::::::host=chaos")

        self.fakes = []
        modes = [("silent", "silent"), ("garbage", "garbage"), ("reset", "rst"),
                 ("trickle", "trickle")]
        for n, (mode, on_retr) in enumerate(modes):
            fake = self.fake(name=f"fake-{mode}")
            fake.broken = (mode, on_retr)
            self.fakes.append(fake)
        backends = [("be1", self.real.servers[0].port), ("be2", self.real.servers[1].port)]
        backends += [(f"fake{n}", fake.port, 'pool = "chaos";')
                     for n, fake in enumerate(self.fakes)]
        self.start_pop3fe(backends, health="500ms", users_lines=lines,
                          extra=(f'connect_timeout = "{int(CONNECT_TIMEOUT * 1000)}ms"; '
                                 f'login_timeout = "{int(LOGIN_TIMEOUT * 1000)}ms"; '
                                 f'backend_timeout = "{int(BACKEND_TIMEOUT * 1000)}ms"; '
                                 f'max_attempts = {MAX_ATTEMPTS}; '
                                 'health_check_timeout = "500ms"; auth_threads = 4;'))

    def flap(self, stop):
        """Each fake alternates: a working back-end, then broken."""
        broken = False
        while not stop.wait(1.0):
            broken = not broken
            for fake in self.fakes:
                mode, on_retr = fake.broken
                fake.mode = mode if broken else "good"
                fake.on_retr = random.choice([on_retr, "half", "die", None]) if broken else on_retr

    def kill_loop(self, stop, results):
        """SIGKILL be1 and restart it, again and again; after each death,
        a login whose primary is be1 (host=be1) must succeed within 1 s."""
        be1 = self.real.servers[0].daemon
        while not stop.wait(1.5):
            be1.kill()
            died = time.monotonic()
            try:
                client = poplib.POP3("127.0.0.1", self.port, timeout=10)
                client.user("probe@example.test")
                client.pass_("probe")
                client.stat()
                results.append(time.monotonic() - died)
                client.quit()
            except (poplib.error_proto, OSError, EOFError) as error:
                results.append(f"probe failed: {error}")
            if stop.wait(1.0):
                break
            be1.start()

    def test_chaos(self):
        daemon = self.daemon
        # Warm up: one round at full concurrency, so the baseline includes
        # what the allocator keeps for it.
        warm = Stats()
        stop = threading.Event()
        threads = [threading.Thread(target=client_loop,
                                    args=(self.port, f"user{i:03d}@example.test", "default",
                                          warm, stop), daemon=True)
                   for i in range(DEFAULT_USERS)]
        for t in threads:
            t.start()
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join(30)
        self.assertGreater(warm.ok["default"], DEFAULT_USERS, warm.errors)
        self.assert_released(timeout=15)
        baseline_fds = self.settled_fds()
        baseline_rss = daemon.rss_kib()

        stats = Stats()
        stop = threading.Event()
        probes = []
        threads = [threading.Thread(target=client_loop,
                                    args=(self.port, f"user{i:03d}@example.test", "default",
                                          stats, stop), daemon=True)
                   for i in range(DEFAULT_USERS)]
        threads += [threading.Thread(target=client_loop,
                                     args=(self.port, f"chaos{i:03d}@example.test", "chaos",
                                           stats, stop), daemon=True)
                    for i in range(CHAOS_USERS)]
        flapper = threading.Thread(target=self.flap, args=(stop,), daemon=True)
        killer = threading.Thread(target=self.kill_loop, args=(stop, probes), daemon=True)
        for t in threads + [flapper, killer]:
            t.start()
        peak_sessions = 0
        deadline = time.monotonic() + STORM_SECONDS
        while time.monotonic() < deadline:
            self.assertIsNone(daemon.proc.poll(), "pop3fe's posternd exited")
            clients = [c for c in self.sessions() if not c["outgoing"]]
            peak_sessions = max(peak_sessions, len(clients))
            time.sleep(1)
        stop.set()
        for t in threads + [flapper, killer]:
            t.join(60)
            self.assertFalse(t.is_alive(), "a client thread is stuck")
        self.assertIsNone(daemon.proc.poll(), "pop3fe's posternd exited")

        report = (f"ok={stats.ok} errors={stats.errors} slowest={stats.slowest} "
                  f"probes={probes} peak_sessions={peak_sessions}")
        print("\nchaos:", report)
        # Every client call ended within the configured timeouts.
        self.assertEqual(stats.violations, [], report)
        # Real work got done in both pools, at real concurrency.
        self.assertGreater(stats.ok["default"], 3 * DEFAULT_USERS, report)
        self.assertGreater(stats.ok["chaos"], 0, report)
        self.assertGreater(peak_sessions, 100, report)
        # After every death of be1, its users logged in (on be2) within 1 s.
        self.assertGreaterEqual(len(probes), 5, report)
        for probe in probes:
            self.assertIsInstance(probe, float, report)
            self.assertLess(probe, 1.0, report)

        # be1 back (the kill loop may have left it dead), then recovery.
        if self.real.servers[0].daemon.proc.poll() is not None:
            self.real.servers[0].daemon.start()
        wait_for(lambda: self.backends()["be1"]["state"] == "up", timeout=10, what="be1 up")
        for fake in self.fakes:
            fake.mode, fake.on_retr = "good", None
        before = self.backends()["be1"]["total_sessions"]
        self.login("probe@example.test", "probe").quit()
        self.assertEqual(self.backends()["be1"]["total_sessions"], before + 1,
                         "the probe user did not return to its primary")

        # Everything released: sessions, per-back-end counts, fds, memory.
        self.baseline = baseline_fds
        self.assert_released(timeout=20)
        rss = daemon.rss_kib()
        print(f"chaos: fds {baseline_fds} -> {daemon.fd_count()}, "
              f"rss {baseline_rss} KiB -> {rss} KiB")
        if sanitized(daemon.pid):
            # ASan keeps freed memory in quarantine: RSS says nothing.
            # LeakSanitizer speaks at the graceful exit below instead.
            pass
        else:
            self.assertLess(rss, baseline_rss * 1.3 + 8192,
                            f"RSS grew from {baseline_rss} KiB to {rss} KiB")
        self.assertEqual(daemon.stop(), 0)
        report = daemon.sanitizer_report()
        self.assertIsNone(report, report)


if __name__ == "__main__":
    unittest.main()
