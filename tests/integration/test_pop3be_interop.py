"""pop3be and other software on the same mail: Dovecot reads a Maildir that
Postern wrote and Postern serves one that Dovecot wrote (the issue's "done
when"), fetchmail downloads through pop3be (also over implicit TLS, and
with UIDL-based "only new mail"), openssl s_client speaks implicit TLS and
STLS.

Dovecot runs privately on loopback from a minimal config in a temporary
directory (`dovecot -c CONF -F`), never as a system service. Its mail
processes refuse to run as root, so the shared Maildir belongs to `nobody`
and these tests need root (as the development machines and CI have).
"""
import os
import poplib
import pwd
import grp
import shutil
import signal
import subprocess
import tempfile
import textwrap
import unittest

from harness import free_port, wait_for
from pop3util import Pop3Server, crlf_form, retr_bytes

poplib._MAXLINE = 1 << 20

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"
FETCHMAIL = shutil.which("fetchmail")
OPENSSL = shutil.which("openssl")

MESSAGES = [
    b"From: a@example.test\nTo: alice@example.test\nSubject: one\n\nfirst body\n",
    b"From: b@example.test\r\nSubject: two\r\n\r\nCRLF body\r\n.starts with dot\r\n..two\r\n",
    b"Subject: three\n\n.\n..\n.x\nlast line\n",
    b"Subject: four\nX-Long: " + b"h" * 3000 + b"\n\n" + b"body line\n" * 2000,
    b"Subject: five\n\n" + bytes(range(0x20, 0x7f)) + b"\n\xc3\xa4\xc3\xb6 utf-8\n",
]


def have_dovecot():
    return (os.path.exists(DOVECOT) and os.path.exists(DOVECOT_LDA) and os.getuid() == 0
            and os.path.exists("/usr/lib/dovecot/pop3"))


class Dovecot:
    """A private Dovecot POP3 server on loopback for one user's Maildir."""

    def __init__(self, test, maildir, user="alice@example.test", password="alice"):
        self.dir = tempfile.mkdtemp(prefix="postern-dovecot-")
        test.addCleanup(self.cleanup)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.maildir = maildir
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.logfile = os.path.join(self.dir, "dovecot.log")
        users = os.path.join(self.dir, "users")
        home = os.path.dirname(maildir)
        with open(users, "w") as f:
            f.write(f"{user}:{{PLAIN}}{password}::::{home}::userdb_mail=maildir:{maildir}\n")
        os.chmod(users, 0o644)
        for sub in ("run", "state"):
            os.makedirs(os.path.join(self.dir, sub))
        with open(self.conf, "w") as f:
            f.write(textwrap.dedent(f"""\
                base_dir = {self.dir}/run
                state_dir = {self.dir}/state
                log_path = {self.logfile}
                protocols = pop3
                listen = 127.0.0.1
                ssl = no
                disable_plaintext_auth = no
                auth_mechanisms = plain
                mail_uid = nobody
                mail_gid = {grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name}
                default_login_user = dovenull
                default_internal_user = dovecot
                passdb {{
                  driver = passwd-file
                  args = {users}
                }}
                userdb {{
                  driver = passwd-file
                  args = {users}
                }}
                service pop3-login {{
                  chroot =
                  inet_listener pop3 {{
                    address = 127.0.0.1
                    port = {self.port}
                  }}
                  inet_listener pop3s {{
                    port = 0
                  }}
                }}
                service anvil {{
                  chroot =
                }}
                """))
        self.proc = None

    def give_maildir_to_nobody(self):
        nobody = pwd.getpwnam("nobody")
        for parent in (os.path.dirname(self.maildir),):
            os.chmod(parent, 0o755)
        for root, dirs, files in os.walk(self.maildir):
            for name in dirs + files:
                os.chown(os.path.join(root, name), nobody.pw_uid, nobody.pw_gid)
        os.chown(self.maildir, nobody.pw_uid, nobody.pw_gid)
        # every directory above it must be traversable
        path = os.path.dirname(self.maildir)
        while path != "/":
            mode = os.stat(path).st_mode
            os.chmod(path, mode | 0o011)
            path = os.path.dirname(path)

    def start(self):
        self.give_maildir_to_nobody()
        self.proc = subprocess.Popen([DOVECOT, "-c", self.conf, "-F"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(self._listening, timeout=20, what="dovecot to listen")
        return self

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"dovecot exited: {self.log()}")
        try:
            client = poplib.POP3("127.0.0.1", self.port, timeout=2)
            client.quit()
            return True
        except OSError:
            return False

    def lda(self, message, user="alice@example.test"):
        proc = subprocess.run([DOVECOT_LDA, "-c", self.conf, "-d", user, "-f", "x@example.test"],
                              input=message, capture_output=True, timeout=30)
        if proc.returncode != 0:
            raise AssertionError(f"dovecot-lda: {proc.returncode} {proc.stderr!r} {self.log()}")

    def pop(self, user="alice@example.test", password="alice"):
        client = poplib.POP3("127.0.0.1", self.port, timeout=20)
        client.user(user)
        client.pass_(password)
        return client

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def shared_pop3(test):
    """pop3be whose users' mail lives in a directory Dovecot can reach."""
    mail_base = tempfile.mkdtemp(prefix="postern-shared-mail-")
    test.addCleanup(shutil.rmtree, mail_base, True)
    os.chmod(mail_base, 0o755)
    server = Pop3Server(test, start=False)
    with open(server.users_file, "w") as f:
        f.write(f"alice@example.test:{{PLAIN}}alice::::{mail_base}/alice::"
                "userdb_mail=maildir:~/Maildir\n")
    server.maildir = lambda user="alice@example.test": os.path.join(mail_base, "alice", "Maildir")
    server.daemon.start()
    return server


def expected_retr(message):
    data = crlf_form(message)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


@unittest.skipUnless(have_dovecot(), "needs dovecot-pop3d and dovecot-core, and root")
class DovecotInterop(unittest.TestCase):
    def test_dovecot_reads_what_postern_wrote(self):
        server = shared_pop3(self)
        for message in MESSAGES:
            server.deliver(message)
        # a pop3be session first: it moves mail to cur/, flags one \Seen
        # and deletes one, so Dovecot sees all of what we write
        client = server.pop()
        postern_sizes = [int(l.split()[1]) for l in client.list()[1]]
        retr_bytes(client, 2)
        client.dele(5)
        client.quit()
        dovecot = Dovecot(self, server.maildir()).start()
        client = dovecot.pop()
        self.assertEqual(client.stat()[0], len(MESSAGES) - 1)
        sizes = [int(l.split()[1]) for l in client.list()[1]]
        self.assertEqual(sizes, postern_sizes[:-1])
        for i, message in enumerate(MESSAGES[:-1], 1):
            data, _ = retr_bytes(client, i)
            self.assertEqual(data, expected_retr(message), f"message {i} through Dovecot")
        client.dele(1)
        client.quit()
        # and pop3be still serves the Maildir after Dovecot changed it
        client = server.pop()
        self.assertEqual(client.stat()[0], len(MESSAGES) - 2)
        for i, message in enumerate(MESSAGES[1:-1], 1):
            self.assertEqual(retr_bytes(client, i)[0], expected_retr(message))
        client.quit()

    def test_postern_serves_what_dovecot_wrote(self):
        server = shared_pop3(self)
        os.makedirs(server.maildir())
        dovecot = Dovecot(self, server.maildir()).start()
        for message in MESSAGES:
            dovecot.lda(message)
        # Dovecot's own POP3 session moves the mail to cur/ and flags it
        client = dovecot.pop()
        dovecot_sizes = [int(l.split()[1]) for l in client.list()[1]]
        retr_bytes(client, 1)
        client.quit()
        client = server.pop()
        self.assertEqual(client.stat()[0], len(MESSAGES))
        self.assertEqual([int(l.split()[1]) for l in client.list()[1]], dovecot_sizes)
        for i, message in enumerate(MESSAGES, 1):
            data, _ = retr_bytes(client, i)
            # dovecot-lda adds a Return-Path header line: compare the rest
            self.assertTrue(data.endswith(expected_retr(message)), f"message {i}")
            header = data[:len(data) - len(expected_retr(message))]
            self.assertIn(header.count(b"\r\n"), (0, 1, 2), header)
        client.dele(2)
        client.quit()
        # another delivery by Dovecot while we are away, then both agree
        dovecot.lda(b"Subject: six\n\nlate\n")
        client = server.pop()
        self.assertEqual(client.stat()[0], len(MESSAGES))
        client.quit()
        client = dovecot.pop()
        self.assertEqual(client.stat()[0], len(MESSAGES))
        client.quit()


@unittest.skipUnless(FETCHMAIL, "needs fetchmail")
class Fetchmail(unittest.TestCase):
    def fetch(self, server, options, port=None, ssl=False):
        outdir = tempfile.mkdtemp(prefix="postern-fetchmail-")
        self.addCleanup(shutil.rmtree, outdir, True)
        mda = os.path.join(outdir, "mda.sh")
        with open(mda, "w") as f:
            f.write('#!/bin/sh\ncat > "$(mktemp "%s/msg.XXXXXX")"\n' % outdir)
        os.chmod(mda, 0o755)
        rc = os.path.join(outdir, "fetchmailrc")
        tls = (f'ssl sslcertck sslcertfile "{server.cert}" sslcommonname "localhost"'
               if ssl else 'sslproto ""')
        with open(rc, "w") as f:
            f.write(f'set no bouncemail\n'
                    f'poll 127.0.0.1 service {port or server.port} protocol pop3 '
                    f'auth password timeout 20\n'
                    f'  user "alice@example.test" password "alice" is "postern" here\n'
                    f'  {tls} mda "{mda}" {options}\n')
        os.chmod(rc, 0o600)
        env = dict(os.environ, FETCHMAILHOME=outdir, HOME=outdir)
        proc = subprocess.run([FETCHMAIL, "-f", rc, "--nodetach", "--nosyslog", "-v"],
                              env=env, capture_output=True, text=True, timeout=60)
        self.assertIn(proc.returncode, (0, 1), proc.stdout + proc.stderr)  # 1: no mail
        messages = []
        for name in sorted(os.listdir(outdir)):
            if name.startswith("msg."):
                with open(os.path.join(outdir, name), "rb") as f:
                    messages.append(f.read())
        return messages, proc.stdout + proc.stderr

    def body_of(self, message):
        return message.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1]

    def test_fetch_and_delete(self):
        server = Pop3Server(self)
        for message in MESSAGES:
            server.deliver(message)
        got, log = self.fetch(server, "fetchall no keep")
        self.assertEqual(len(got), len(MESSAGES), log)
        self.assertEqual(sorted(self.body_of(m) for m in got),
                         sorted(self.body_of(m) for m in MESSAGES))
        client = server.pop()
        self.assertEqual(client.stat()[0], 0)
        client.quit()

    def test_keep_with_uidl_fetches_only_new_mail(self):
        server = Pop3Server(self)
        server.deliver(MESSAGES[0])
        server.deliver(MESSAGES[1])
        # fetchmail keeps its .fetchids in FETCHMAILHOME: reuse one home
        home = tempfile.mkdtemp(prefix="postern-fetchmail-home-")
        self.addCleanup(shutil.rmtree, home, True)
        counts = []
        for step in range(3):
            if step == 2:
                server.deliver(MESSAGES[2])
            counts.append(self.fetch_in(home, server))
        self.assertEqual(counts, [2, 0, 1])

    def fetch_in(self, home, server):
        mda = os.path.join(home, "mda.sh")
        with open(mda, "w") as f:
            f.write('#!/bin/sh\ncat > "$(mktemp "%s/msg.XXXXXX")"\n' % home)
        os.chmod(mda, 0o755)
        rc = os.path.join(home, "fetchmailrc")
        with open(rc, "w") as f:
            f.write(f'set no bouncemail\npoll 127.0.0.1 service {server.port} protocol pop3 '
                    f'uidl\n  user "alice@example.test" password "alice" is "postern" here\n'
                    f'  sslproto "" mda "{mda}" keep\n')
        os.chmod(rc, 0o600)
        before = len([n for n in os.listdir(home) if n.startswith("msg.")])
        env = dict(os.environ, FETCHMAILHOME=home, HOME=home)
        proc = subprocess.run([FETCHMAIL, "-f", rc, "--nodetach", "--nosyslog"], env=env,
                              capture_output=True, text=True, timeout=60)
        self.assertIn(proc.returncode, (0, 1), proc.stdout + proc.stderr)
        return len([n for n in os.listdir(home) if n.startswith("msg.")]) - before

    def test_fetch_over_implicit_tls(self):
        server = Pop3Server(self)
        server.deliver(MESSAGES[3])
        got, log = self.fetch(server, "fetchall keep", port=server.tls_port, ssl=True)
        self.assertEqual(len(got), 1, log)
        self.assertEqual(self.body_of(got[0]), self.body_of(MESSAGES[3]))


@unittest.skipUnless(OPENSSL, "needs openssl")
class OpensslClient(unittest.TestCase):
    def s_client(self, server, args, script):
        proc = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{args[0]}",
                               "-CAfile", server.cert, "-verify_return_error", "-quiet",
                               "-ign_eof"] + list(args[1:]),
                              input=script, capture_output=True, timeout=30)
        return proc.stdout.decode(errors="replace")

    def test_implicit_tls(self):
        server = Pop3Server(self)
        server.deliver(b"Subject: tls\n\nover tls\n")
        out = self.s_client(server, [server.tls_port],
                            b"USER alice@example.test\r\nPASS alice\r\nRETR 1\r\nQUIT\r\n")
        self.assertIn("+OK Logged in, 1 messages", out)
        self.assertIn("over tls\r\n.\r\n", out)
        self.assertIn("+OK Logging out", out)

    def test_starttls(self):
        server = Pop3Server(self)
        out = self.s_client(server, [server.strict_port, "-starttls", "pop3"],
                            b"CAPA\r\nUSER alice@example.test\r\nPASS alice\r\nSTAT\r\nQUIT\r\n")
        self.assertIn("SASL PLAIN", out)
        self.assertIn("+OK 0 0", out)
        self.assertIn("+OK Logging out", out)


if __name__ == "__main__":
    unittest.main()
