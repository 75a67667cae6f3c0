"""smtp module, outbound ("transport.smtp"): remote delivery through the
real queue-store to Postfix's smtp-sink as the remote MX (accepted, 4xx
then retry, 5xx bounce), MX routing through a fake DNS server on loopback
(preference order and fallback, A fallback, null MX, NXDOMAIN), and
hostile remote servers (garbage, endless replies, silence)."""
import socket
import threading
import time
import unittest

from harness import free_port, wait_for
from smtputil import FakeDns, SmtpServer, SmtpSink

MESSAGE = (b"From: alice@example.test\r\nTo: someone@remote.test\r\nSubject: out\r\n"
           b"Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <2@example.test>\r\n\r\n"
           b".leading dot must arrive\r\nbody\r\n")


def send(server, rcpts, message=MESSAGE, sender="alice@example.test"):
    """Send from a trusted network (relay_networks covers loopback)."""
    client = server.client()
    client.command("EHLO client.example")
    while not client.line().startswith("250 "):
        pass
    assert client.command(f"MAIL FROM:<{sender}>") == "250 2.1.0 Ok"
    for rcpt in rcpts:
        reply = client.command(f"RCPT TO:<{rcpt}>")
        assert reply == "250 2.1.5 Ok", reply
    assert client.command("DATA").startswith("354")
    stuffed = (b"\r\n" + message).replace(b"\r\n.", b"\r\n..")[2:]
    client.send(stuffed + b".\r\n")
    reply = client.line()
    assert reply.startswith("250 2.0.0 Ok: queued as "), reply
    client.command("QUIT")
    return reply.split()[-1]


def recipients(server):
    """{address: recipient dict} of every message in the queue."""
    result = {}
    for message in server.queue_list().get("messages", []):
        for rcpt in message.get("recipients", []):
            result[rcpt["address"]] = rcpt
    return result


TRUSTED = 'relay_networks = ("127.0.0.0/8");'


class RelayHost(unittest.TestCase):
    def test_delivered_to_sink(self):
        sink = SmtpSink(self)
        server = SmtpServer(self, smtp_extra=TRUSTED, relay_port=sink.port)
        send(server, ["someone@remote.test", "other@remote.test"])
        dumped = wait_for(sink.messages, timeout=15, what="message at smtp-sink")
        self.assertEqual(len(dumped), 1)
        self.assertIn(b"\n.leading dot must arrive", dumped[0].replace(b"\r\n", b"\n"))
        self.assertIn(b"someone@remote.test", dumped[0])
        self.assertIn(b"other@remote.test", dumped[0])
        wait_for(lambda: recipients(server) == {}, timeout=10, what="queue to empty")
        status, out, _ = server.daemon.ctl("smtp", "stats")
        self.assertIn("outbound_delivered 2", out)

    def test_4xx_deferred_then_delivered_after_flush(self):
        port = free_port()
        sink = SmtpSink(self, port=port, defer="RCPT")
        server = SmtpServer(self, smtp_extra=TRUSTED, relay_port=port)
        send(server, ["someone@remote.test"])
        rcpt = wait_for(lambda: recipients(server).get("someone@remote.test", {})
                        .get("last_result"), timeout=15, what="a deferral")
        self.assertEqual(rcpt["code"] // 100, 4)
        self.assertIn("in reply to RCPT TO", rcpt["text"])
        self.assertEqual(sink.messages(), [])
        sink.stop()
        good = SmtpSink(self, port=port)
        status, out, err = server.daemon.ctl("queue", "flush")
        self.assertEqual(status, 0, err)
        wait_for(good.messages, timeout=15, what="delivery after flush")
        wait_for(lambda: recipients(server) == {}, timeout=10, what="queue to empty")

    def test_5xx_bounces_to_sender(self):
        sink = SmtpSink(self, reject="RCPT")
        server = SmtpServer(self, smtp_extra=TRUSTED, relay_port=sink.port)
        send(server, ["someone@remote.test"])
        bounce = server.wait_messages(1, "alice", timeout=15)[0]
        self.assertIn(b"multipart/report", bounce)
        self.assertIn(b"someone@remote.test", bounce)
        self.assertIn(b"Status: 5.", bounce)
        self.assertEqual(sink.messages(), [])

    def test_destination_down_is_deferred_and_listed(self):
        server = SmtpServer(self, smtp_extra=TRUSTED, relay_port=free_port())
        send(server, ["someone@remote.test"])
        rcpt = wait_for(lambda: recipients(server).get("someone@remote.test", {})
                        .get("last_result"), timeout=15, what="a deferral")
        self.assertEqual(rcpt["code"], 0)
        self.assertIn("127.0.0.1", rcpt["text"])


class HostileServer:
    """A TCP server on loopback that plays `script(conn)` for each client."""

    def __init__(self, test, script):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.running = True
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        test.addCleanup(self.stop)

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            conn.settimeout(5)
            try:
                self.script(conn, self)
            except OSError:
                pass
            finally:
                conn.close()

    def stop(self):
        self.running = False
        self.thread.join(timeout=10)
        self.sock.close()


def garbage(conn, server):
    conn.sendall(b"220 hi\r\n")
    conn.recv(1000)
    conn.sendall(b"this is not smtp\r\n")
    time.sleep(0.5)


def endless(conn, server):
    conn.sendall(b"220 hi\r\n")
    conn.recv(1000)
    try:
        for _ in range(2000):
            conn.sendall(b"250-" + b"X" * 60 + b"\r\n")
    except OSError:
        pass


def overlong(conn, server):
    conn.sendall(b"220 " + b"A" * 100000 + b"\r\n")
    time.sleep(0.5)


def silent(conn, server):
    while server.running:
        time.sleep(0.1)


class Hostile(unittest.TestCase):
    def deferred_by(self, script, extra=""):
        hostile = HostileServer(self, script)
        server = SmtpServer(self, smtp_extra=TRUSTED + extra, relay_port=hostile.port)
        send(server, ["someone@remote.test"])
        rcpt = wait_for(lambda: recipients(server).get("someone@remote.test", {})
                        .get("last_result"), timeout=20, what="a failed attempt")
        self.assertEqual(rcpt["code"], 0, rcpt)
        # The daemon is alive and answers.
        self.assertEqual(server.client().command("NOOP"), "250 2.0.0 Ok")
        return rcpt["text"]

    def test_garbage_reply(self):
        self.assertIn("malformed reply", self.deferred_by(garbage))

    def test_endless_multiline_reply(self):
        self.assertIn("too many lines", self.deferred_by(endless))

    def test_overlong_reply(self):
        self.assertIn("too long", self.deferred_by(overlong))

    def test_no_greeting_times_out(self):
        text = self.deferred_by(silent, 'outbound_greeting_timeout = "1s";')
        self.assertIn("timeout", text)


class Mx(unittest.TestCase):
    def server(self, dns, sink_port):
        return SmtpServer(self, smtp_extra=TRUSTED + f'dns_servers = "127.0.0.1:{dns.port}"; '
                          f'outbound_port = {sink_port}; outbound_ipv6 = false;')

    def test_mx_preference_and_fallback(self):
        sink = SmtpSink(self)
        dns = FakeDns(self, {
            ("remote.test", "MX"): [(20, "mx2.remote.test"), (10, "mx1.remote.test")],
            # Nothing listens on 127.0.0.2 at the sink's port: refused.
            ("mx1.remote.test", "A"): ["127.0.0.2"],
            ("mx2.remote.test", "A"): ["127.0.0.1"],
        })
        server = self.server(dns, sink.port)
        send(server, ["someone@remote.test"])
        wait_for(sink.messages, timeout=15, what="delivery through mx2")
        names = [q[0] for q in dns.queries]
        self.assertLess(names.index("mx1.remote.test"), names.index("mx2.remote.test"))

    def test_a_fallback_without_mx(self):
        sink = SmtpSink(self)
        dns = FakeDns(self, {("amx.test", "A"): ["127.0.0.1"]})
        server = self.server(dns, sink.port)
        send(server, ["someone@amx.test"])
        wait_for(sink.messages, timeout=15, what="delivery to the A record")

    def test_null_mx_bounces(self):
        dns = FakeDns(self, {("nullmx.test", "MX"): [(0, ".")]})
        server = self.server(dns, free_port())
        send(server, ["someone@nullmx.test"])
        bounce = server.wait_messages(1, "alice", timeout=15)[0]
        self.assertIn(b"5.1.10", bounce)

    def test_nxdomain_bounces(self):
        dns = FakeDns(self, {})
        server = self.server(dns, free_port())
        send(server, ["someone@nowhere.test"])
        bounce = server.wait_messages(1, "alice", timeout=15)[0]
        self.assertIn(b"5.1.2", bounce)


if __name__ == "__main__":
    unittest.main()
