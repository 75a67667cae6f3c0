"""Helpers for the smtp module's integration tests: a posternd with
queue-store and smtp on random loopback ports, Maildir readers, an
smtp-sink remote MX, and a tiny DNS server for MX tests."""
import glob
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

from harness import LineClient, Posternd, SRCDIR, free_port, make_cert, wait_for

DEV_USERS = os.path.join(SRCDIR, "etc", "dev-users")
SMTP_SINK = "/usr/sbin/smtp-sink"


class SmtpServer:
    """posternd with queue-store (example.test local) and smtp."""

    def __init__(self, test, smtp_extra="", queue_extra="", overrides=(), relay_port=None,
                 start=True):
        self.test = test
        self.port = free_port()
        self.sub_port = free_port()
        self.subs_port = free_port()
        self.certdir = tempfile.mkdtemp(prefix="postern-smtp-cert-")
        test.addCleanup(shutil.rmtree, self.certdir, True)
        self.cert, self.key = make_cert(self.certdir)
        self.relay = f'relay_host = "[127.0.0.1]:{relay_port}";' if relay_port else ""
        self.queue_extra = queue_extra
        self.daemon = Posternd(test, self.config(smtp_extra), overrides, name="smtp")
        if start:
            self.daemon.start()

    def config(self, smtp_extra="", listen_port=None):
        return f"""modules = ("queue-store", "smtp");
queue-store = {{
	queue_dir = "queue";
	local_domains = ("example.test");
	passwd_file = "{DEV_USERS}";
	retry_min = "1h";
	{self.queue_extra}
}};
smtp = {{
	listen = ("127.0.0.1:{listen_port or self.port}");
	submission_listen = ("127.0.0.1:{self.sub_port}");
	submission_tls_listen = ("127.0.0.1:{self.subs_port}");
	hostname = "mx.example.test";
	cert_file = "{self.cert}";
	key_file = "{self.key}";
	passwd_file = "{DEV_USERS}";
	auth_failure_delay = "20ms";
	auth_failure_delay_max = "100ms";
	outbound_connect_timeout = "5s";
	outbound_command_timeout = "10s";
	{self.relay}
	{smtp_extra}
}};
"""

    def reload(self, smtp_extra="", listen_port=None):
        """Rewrite the configuration and SIGHUP; waits until it is applied."""
        self.daemon.reload(self.config(smtp_extra, listen_port))

    @property
    def base(self):
        return self.daemon.base

    def maildir(self, user="alice"):
        return os.path.join(self.base, "var", "mail", "example.test", user, "Maildir")

    def messages(self, user="alice"):
        """Bytes of every message in the user's Maildir new/ and cur/."""
        files = sorted(glob.glob(os.path.join(self.maildir(user), "new", "*")) +
                       glob.glob(os.path.join(self.maildir(user), "cur", "*")))
        result = []
        for name in files:
            with open(name, "rb") as f:
                result.append(f.read())
        return result

    def wait_messages(self, count, user="alice", timeout=10):
        return wait_for(lambda: len(self.messages(user)) >= count and self.messages(user),
                        timeout=timeout, what=f"{count} message(s) for {user}")

    def client(self, port=None, greet=True):
        client = LineClient(port or self.port)
        self.test.addCleanup(client.close)
        if greet:
            line = client.line()
            assert line.startswith("220 "), line
        return client

    def queue_list(self):
        import json
        status, out, err = self.daemon.ctl("queue", "list", "--json")
        assert status == 0, err
        return json.loads(out)


def read_reply(client):
    """A whole (multi-line) reply: list of lines."""
    lines = []
    while True:
        line = client.line()
        if line is None:
            return lines or None
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines


def ehlo(client, name="client.example"):
    client.send(f"EHLO {name}\r\n")
    return read_reply(client)


def tls_wrap(client):
    """Upgrade a LineClient's socket to TLS (certificate not verified)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    client.sock = ctx.wrap_socket(client.sock, server_hostname="localhost")
    client.buffer = b""
    return client


class SmtpSink:
    """Postfix's smtp-sink on loopback as a remote MX, dumping each message
    to a file. `reject`: commands answered 5xx; `defer`: answered 4xx."""

    def __init__(self, test, port=None, reject=None, defer=None, host="127.0.0.1"):
        if not os.path.exists(SMTP_SINK):
            test.skipTest("smtp-sink (Debian package postfix) not installed")
        self.test = test
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="postern-sink-")
        os.chmod(self.dir, 0o777)
        test.addCleanup(shutil.rmtree, self.dir, True)
        args = [SMTP_SINK, "-c", "-d", os.path.join(self.dir, "%Y%m%d%H%M%S.")]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        if reject:
            args += ["-f", reject]
        if defer:
            args += ["-r", defer]
        args += [f"{host}:{self.port}", "10"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        test.addCleanup(self.stop)
        wait_for(self._listening, timeout=10, what="smtp-sink to listen")

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError("smtp-sink exited: " + self.proc.stderr.read().decode())
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def messages(self):
        result = []
        for name in sorted(os.listdir(self.dir)):
            with open(os.path.join(self.dir, name), "rb") as f:
                result.append(f.read())
        return result


class FakeDns:
    """A tiny UDP DNS server on 127.0.0.1 answering from a table:
    {("name", "MX"): [(pref, "host")], ("name", "A"): ["127.0.0.1"]};
    names not in the table get NXDOMAIN, types not in it NODATA."""

    def __init__(self, test, records):
        self.records = {(name.lower().rstrip("."), rtype): value
                        for (name, rtype), value in records.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.running = True
        self.queries = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        test.addCleanup(self.stop)

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()

    @staticmethod
    def _name(data, offset):
        labels = []
        while True:
            length = data[offset]
            offset += 1
            if length == 0:
                return ".".join(labels), offset
            labels.append(data[offset:offset + length].decode())
            offset += length

    @staticmethod
    def _encode(name):
        out = b""
        for label in name.rstrip(".").split("."):
            if label:
                out += bytes([len(label)]) + label.encode()
        return out + b"\0"

    def _serve(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.sock.sendto(self._answer(data), peer)
            except Exception:  # a test helper: never die on odd input
                continue

    def _answer(self, data):
        qid, flags, qd = struct.unpack(">HHH", data[:6])
        name, offset = self._name(data, 12)
        qtype, qclass = struct.unpack(">HH", data[offset:offset + 4])
        question = data[12:offset + 4]
        types = {1: "A", 15: "MX", 28: "AAAA"}
        rtype = types.get(qtype, "?")
        key = name.lower()
        self.queries.append((key, rtype))
        known = any(k[0] == key for k in self.records)
        answers = []
        if (key, rtype) in self.records:
            for value in self.records[(key, rtype)]:
                if rtype == "A":
                    rdata = socket.inet_aton(value)
                elif rtype == "AAAA":
                    rdata = socket.inet_pton(socket.AF_INET6, value)
                else:
                    rdata = struct.pack(">H", value[0]) + self._encode(value[1])
                answers.append(b"\xc0\x0c" + struct.pack(">HHIH", qtype, 1, 60, len(rdata)) +
                               rdata)
        rcode = 0 if known else 3
        header = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, len(answers), 0, 0)
        return header + question + b"".join(answers)
