"""Helpers for the queue-store module's integration tests.

A QueueServer is a posternd with queue-store (example.test local, the dev
users), a submission path and, for remote recipients, the fake transport
tests/modules/testtransport.c. The submission path is pluggable:

    POSTERN_QUEUE_SUBMIT=testsubmit   tests/modules/testsubmit.c (default):
                                      a line protocol onto the queue service
    POSTERN_QUEUE_SUBMIT=smtp         the smtp module, with python smtplib

Both give a client with the same submit() call, so a test that only
submits and looks at the queue and the mailboxes runs through either.
Tests that need the fake transport (retries, notices of remote failures)
use testsubmit, since the smtp module offers the real transport.
"""
import email
import email.policy
import glob
import json
import os
import smtplib
import socket
import time

from harness import Posternd, SRCDIR, free_port, wait_for

DEV_USERS = os.path.join(SRCDIR, "etc", "dev-users")


def submit_mode():
    return os.environ.get("POSTERN_QUEUE_SUBMIT", "testsubmit")


class SubmitError(Exception):
    """The server refused the message (or went away).

    `maybe_queued` is True when the whole message was handed over and the
    answer was lost: the message may be queued (a crash between the fsync
    and the answer), but must then be delivered at most once.
    """

    def __init__(self, text, maybe_queued=False):
        super().__init__(text)
        self.maybe_queued = maybe_queued


class TestSubmitClient:
    """One connection to testsubmit; submit() may be called repeatedly."""

    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rwb")
        greeting = self._line()
        if not greeting.startswith("+OK"):
            raise SubmitError(f"greeting: {greeting}")

    def _line(self):
        line = self.file.readline()
        if not line:
            raise ConnectionError("connection closed")
        return line.decode(errors="replace").rstrip("\r\n")

    def _command(self, text):
        self.file.write(text.encode() + b"\r\n")
        self.file.flush()
        return self._line()

    def check(self, address):
        return self._command(f"CHECK {address}")

    def submit(self, sender, rcpts, data, mail_params="", stop_after=None):
        """Queue `data` (bytes, CRLF lines). rcpts: addresses, or
        (address, "NOTIFY=... ORCPT=...") pairs. Returns the queue id.
        stop_after=N sends only N bytes of the message, then hangs up."""
        try:
            reply = self._command(f"MAIL {sender or '<>'} {mail_params}".rstrip())
            if not reply.startswith("+OK"):
                raise SubmitError(reply)
            accepted = 0
            for rcpt in rcpts:
                address, params = rcpt if isinstance(rcpt, tuple) else (rcpt, "")
                reply = self._command(f"RCPT {address} {params}".rstrip())
                if reply.startswith("+OK"):
                    accepted += 1
                elif len(rcpts) == 1:
                    raise SubmitError(reply)
            if accepted == 0:
                raise SubmitError("no recipient accepted")
            reply = self._command(f"DATA {len(data)}")
            if not reply.startswith("+OK"):
                raise SubmitError(reply)
        except (OSError, ConnectionError) as err:
            raise SubmitError(str(err)) from err
        if stop_after is not None:
            self.file.write(data[:stop_after])
            self.file.flush()
            self.close()
            raise SubmitError("hung up on purpose")
        try:
            self.file.write(data)
            self.file.flush()
        except (OSError, ConnectionError) as err:
            raise SubmitError(str(err)) from err
        try:
            reply = self._line()
        except (OSError, ConnectionError) as err:
            raise SubmitError(str(err), maybe_queued=True) from err
        if not reply.startswith("+OK queued "):
            raise SubmitError(reply)
        return reply.split()[2]

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass


class SmtpSubmitClient:
    """The same through the smtp module, with smtplib."""

    def __init__(self, port, timeout=30):
        try:
            self.smtp = smtplib.SMTP("127.0.0.1", port, timeout=timeout)
            self.smtp.ehlo("client.example")
        except (OSError, smtplib.SMTPException) as err:
            raise SubmitError(str(err)) from err

    def check(self, address):
        self.smtp.rset()
        self.smtp.mail("probe@example.test")
        code, text = self.smtp.rcpt(address)
        self.smtp.rset()
        if code == 250:
            local = address.lower().endswith("@example.test")
            return "+OK local" if local else "+OK remote"
        return "-ERR unknown user" if code == 550 else "-ERR tempfail"

    def submit(self, sender, rcpts, data, mail_params="", stop_after=None):
        options = mail_params.split()
        try:
            code, text = self.smtp.mail(sender, options)
            if code != 250:
                raise SubmitError(f"{code} {text!r}")
            accepted = 0
            for rcpt in rcpts:
                address, params = rcpt if isinstance(rcpt, tuple) else (rcpt, "")
                code, text = self.smtp.rcpt(address, params.split())
                if code == 250:
                    accepted += 1
            if accepted == 0:
                raise SubmitError("no recipient accepted")
            if stop_after is not None:
                self.smtp.putcmd("data")
                self.smtp.getreply()
                self.smtp.send(data[:stop_after])
                self.close()
                raise SubmitError("hung up on purpose")
            code, text = self.smtp.data(data)
        except smtplib.SMTPServerDisconnected as err:
            raise SubmitError(str(err), maybe_queued=stop_after is None) from err
        except (OSError, smtplib.SMTPException) as err:
            raise SubmitError(str(err)) from err
        if code != 250:
            raise SubmitError(f"{code} {text!r}")
        words = text.decode(errors="replace").split()
        return words[-1]

    def close(self):
        try:
            self.smtp.close()
        except (OSError, smtplib.SMTPException):
            pass


class QueueServer:
    """posternd with queue-store, a submission path and the fake transport."""

    def __init__(self, test, queue_extra="", overrides=(), transport=True, start=True,
                 mode=None, transport_extra="", queue_dir="queue", name="queue"):
        self.test = test
        self.mode = mode or submit_mode()
        self.port = free_port()
        self._layout = (queue_dir, transport, transport_extra)
        self.daemon = Posternd(test, self.config(queue_extra), overrides, name=name)
        os.makedirs(os.path.join(self.base, "remote"), exist_ok=True)
        if start:
            self.start()

    def config(self, queue_extra=""):
        queue_dir, transport, transport_extra = self._layout
        modules = ['"queue-store"']
        groups = f"""queue-store = {{
	queue_dir = "{queue_dir}";
	local_domains = ("example.test");
	passwd_file = "{DEV_USERS}";
	hostname = "mx.example.test";
	{queue_extra}
}};
"""
        if self.mode == "smtp":
            modules.append('"smtp"')
            groups += f"""smtp = {{
	listen = ("127.0.0.1:{self.port}");
	hostname = "mx.example.test";
	passwd_file = "{DEV_USERS}";
	relay_networks = ("127.0.0.0/8");
}};
"""
        else:
            if transport:
                modules.append('"testtransport"')
                groups += f"""testtransport = {{
	spool_dir = "remote";
	{transport_extra}
}};
"""
            modules.append('"testsubmit"')
            groups += f'testsubmit = {{ listen = ("127.0.0.1:{self.port}"); }};\n'
        return f"modules = ({', '.join(modules)});\n" + groups

    def reload(self, queue_extra=""):
        """Rewrite the configuration and SIGHUP; waits until it is applied."""
        self.daemon.reload(self.config(queue_extra))

    @property
    def base(self):
        return self.daemon.base

    @property
    def queue_dir(self):
        return os.path.join(self.base, "queue")

    def start(self):
        self.daemon.start()
        return self

    def client(self):
        client = SmtpSubmitClient(self.port) if self.mode == "smtp" else TestSubmitClient(self.port)
        self.test.addCleanup(client.close)
        return client

    def client_unregistered(self, timeout=10):
        """A client the caller closes (threads that make many)."""
        if self.mode == "smtp":
            return SmtpSubmitClient(self.port, timeout)
        return TestSubmitClient(self.port, timeout)

    def submit(self, sender, rcpts, data, mail_params=""):
        client = self.client()
        try:
            return client.submit(sender, rcpts, data, mail_params)
        finally:
            client.close()

    def ctl(self, *args):
        return self.daemon.ctl(*args)

    def ctl_ok(self, *args):
        status, out, err = self.daemon.ctl(*args)
        self.test.assertEqual(status, 0, f"posternctl {' '.join(args)}: {out}{err}")
        return out

    def queue_list(self):
        return json.loads(self.ctl_ok("--json", "queue", "list"))["messages"]

    def queue_ids(self):
        return [m["id"] for m in self.queue_list()]

    def message(self, queue_id):
        for message in self.queue_list():
            if message["id"] == queue_id:
                return message
        return None

    def wait_queue_empty(self, timeout=15):
        return wait_for(lambda: self.queue_list() == [] or None, timeout=timeout,
                        what="an empty queue")

    def maildir(self, user="alice"):
        return os.path.join(self.base, "var", "mail", "example.test", user, "Maildir")

    def mail_files(self, user="alice"):
        return sorted(glob.glob(os.path.join(self.maildir(user), "new", "*")) +
                      glob.glob(os.path.join(self.maildir(user), "cur", "*")))

    def messages(self, user="alice"):
        result = []
        for name in self.mail_files(user):
            with open(name, "rb") as f:
                result.append(f.read())
        return result

    def wait_messages(self, count, user="alice", timeout=15):
        return wait_for(lambda: len(self.messages(user)) >= count and self.messages(user),
                        timeout=timeout, what=f"{count} messages for {user}")

    def remote_messages(self):
        result = []
        for name in sorted(glob.glob(os.path.join(self.base, "remote", "*.eml"))):
            with open(name, "rb") as f:
                result.append(f.read())
        return result

    def transport(self, *args):
        return self.ctl_ok("testtransport", *args)

    def transport_stats(self):
        out = self.ctl_ok("testtransport", "stats")
        return {k: int(v) for k, v in (line.split() for line in out.splitlines())}

    def stats(self):
        return json.loads(self.ctl_ok("--json", "queue", "stats"))

    def incoming_leftovers(self):
        return incoming_leftovers(self.queue_dir)

    def spares(self):
        """The spare files in incoming/: {name: size}."""
        incoming = os.path.join(self.queue_dir, "incoming")
        return {name: os.path.getsize(os.path.join(incoming, name))
                for name in os.listdir(incoming) if name.startswith("spare.")}


def fold(body, width=76):
    """Long lines cut to `width` (SMTP allows 998 bytes per line)."""
    lines = []
    for line in body.split("\r\n"):
        lines.extend(line[i:i + width] for i in range(0, max(len(line), 1), width))
    return "\r\n".join(lines)


def message_bytes(subject="test", body="hello", sender="bob@example.test",
                  to="alice@example.test", extra_headers=""):
    body = fold(body)
    text = (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@example.test>\r\n{extra_headers}\r\n"
            f"{body}\r\n")
    return text.encode()


def parse_dsn(raw):
    """Parse a notice as Python's email package sees it; returns
    (message, human part, per-message fields, [per-recipient fields],
    returned part)."""
    if raw.startswith(b"Return-Path:"):
        raw = raw.split(b"\n", 2)[2]   # the Return-Path and Delivered-To of local delivery
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status", msg.get_param("report-type")
    parts = msg.get_payload()
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    human, status, returned = parts
    assert human.get_content_type() == "text/plain"
    assert status.get_content_type() == "message/delivery-status"
    groups = status.get_payload()
    per_message = groups[0]
    per_rcpt = groups[1:]
    return msg, human, per_message, per_rcpt, returned


def incoming_leftovers(queue_dir):
    """The files of queue_dir/incoming but empty spares (the recycled
    message files queue-store keeps for the next messages)."""
    incoming = os.path.join(queue_dir, "incoming")
    left = []
    for name in os.listdir(incoming):
        try:
            empty = os.path.getsize(os.path.join(incoming, name)) == 0
        except FileNotFoundError:
            continue
        if not (name.startswith("spare.") and empty):
            left.append(name)
    return sorted(left)


def wait_until(predicate, timeout=15, what="condition"):
    return wait_for(predicate, timeout=timeout, interval=0.05, what=what)


def now():
    return time.monotonic()
