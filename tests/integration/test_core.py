"""Integration tests of the core: config, -t/-n/-o, connections, limits,
timeouts, STARTTLS, control socket, reload, shutdown, pidfile, privileges,
fd accounting. The protocol is tests/modules/testecho.c."""
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import unittest

from harness import (LineClient, Posternd, POSTERND, SRCDIR, BUILDDIR, free_port,
                     make_cert, wait_for)


def echo_config(port, extra=""):
    return (f'modules = ("testecho");\n'
            f'testecho = {{ listen = ("127.0.0.1:{port}"); {extra} }};\n')


class EchoTestCase(unittest.TestCase):
    def start_echo(self, extra="", overrides=()):
        self.port = free_port()
        self.daemon = Posternd(self, echo_config(self.port, extra), overrides).start()
        return self.daemon

    def client(self):
        client = LineClient(self.port)
        self.addCleanup(client.close)
        self.assertEqual(client.line(), "+OK testecho ready")
        return client


class ConfigCheck(unittest.TestCase):
    def test_good_config_passes(self):
        daemon = Posternd(self, echo_config(free_port()))
        status, output = daemon.check()
        self.assertEqual(status, 0, output)
        self.assertIn("configuration OK, 1 module loaded", output)

    def test_dev_config_passes(self):
        args = [POSTERND, "-t", "-c", os.path.join(SRCDIR, "etc", "postern-dev.conf"),
                "-o", f'module_dir="{BUILDDIR}/modules/.libs"']
        if not os.path.exists(os.path.join(SRCDIR, "var", "tls", "dev.crt")):
            # tools/dev makes the dev certificate; without it, use a fresh one.
            import shutil
            import tempfile
            certdir = tempfile.mkdtemp(prefix="postern-devcert-")
            self.addCleanup(shutil.rmtree, certdir, True)
            cert, key = make_cert(certdir)
            for module in ("smtp", "pop3be"):
                args += ["-o", f'{module}.cert_file="{cert}"', "-o", f'{module}.key_file="{key}"']
        proc = subprocess.run(args, capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("configuration OK", proc.stdout)

    def test_syntax_error_names_file_and_line(self):
        daemon = Posternd(self, 'modules = ();\nbroken = ;\n')
        status, output = daemon.check()
        self.assertEqual(status, 1)
        self.assertRegex(output, r"postern\.conf:8: ")

    def test_unknown_module_setting_is_an_error(self):
        daemon = Posternd(self, echo_config(free_port(), 'listne = "x";'))
        status, output = daemon.check()
        self.assertEqual(status, 1)
        self.assertIn("listne", output)
        self.assertRegex(output, r"postern\.conf:\d+")

    def test_group_of_unlisted_module_is_an_error(self):
        daemon = Posternd(self, 'modules = ();\nsmpt = { x = 1; };\n')
        status, output = daemon.check()
        self.assertEqual(status, 1)
        self.assertIn("smpt", output)

    def test_missing_module_file(self):
        daemon = Posternd(self, 'modules = ("nosuchmodule");\n')
        status, output = daemon.check()
        self.assertEqual(status, 1)
        self.assertIn("nosuchmodule.so", output)

    def test_override_on_check_and_dump(self):
        daemon = Posternd(self, echo_config(free_port()),
                          overrides=['testecho.greeting="from -o"', "log_level=\"error\""])
        status, output = daemon.check()
        self.assertEqual(status, 0, output)
        proc = subprocess.run(daemon.args("-n"), capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("from -o", proc.stdout)
        self.assertRegex(proc.stdout, r'log_level\s*=\s*"error"')

    def test_bad_override_is_refused(self):
        daemon = Posternd(self, echo_config(free_port()), overrides=["testecho.max_line=(("])
        status, output = daemon.check()
        self.assertEqual(status, 1)
        self.assertIn("testecho.max_line", output)

    def test_override_out_of_range(self):
        daemon = Posternd(self, echo_config(free_port()), overrides=["testecho.max_line=0"])
        status, output = daemon.check()
        self.assertEqual(status, 1)
        self.assertIn("max_line", output)

    def test_version(self):
        proc = subprocess.run([POSTERND, "-V"], capture_output=True, text=True, timeout=10)
        self.assertEqual(proc.returncode, 0)
        self.assertRegex(proc.stdout, r"posternd \d+\.\d+\.\d+ \(module ABI 1\.\d+\)")


class ModuleRefusal(unittest.TestCase):
    """posternd -t refuses bad modules with one line: file, found, need."""

    def refused(self, modules, *expected):
        names = ", ".join(f'"{m}"' for m in modules)
        daemon = Posternd(self, f"modules = ({names});\n")
        status, output = daemon.check()
        self.assertEqual(status, 1, output)
        for text in expected:
            self.assertIn(text, output)
        return output

    def test_abi_major(self):
        out = self.refused(["tm_abi_major"], "tm_abi_major.so", "ABI 2.0", "this posternd has 1.")
        self.assertEqual(len(out.strip().splitlines()), 1, out)

    def test_newer_minor(self):
        self.refused(["tm_abi_minor"], "tm_abi_minor.so", "upgrade posternd")

    def test_bad_magic(self):
        self.refused(["tm_bad_magic"], "tm_bad_magic.so", "magic", "0x5053544e")

    def test_missing_symbol(self):
        self.refused(["tm_no_symbol"], "tm_no_symbol.so", "postern_module")

    def test_undefined_symbol(self):
        self.refused(["tm_undefined"], "tm_undefined.so", "undefined symbol")

    def test_missing_dependency(self):
        self.refused(["tm_missing_dep"], "tm_missing_dep", "not in 'modules'")

    def test_cycle(self):
        self.refused(["tm_cycle_a", "tm_cycle_b"], "cycle")

    def test_duplicate(self):
        self.refused(["testecho", "testecho"], "testecho")


class Connections(EchoTestCase):
    def test_override_reaches_module(self):
        self.start_echo(overrides=['testecho.greeting="hello from -o"'])
        client = LineClient(self.port)
        self.addCleanup(client.close)
        self.assertEqual(client.line(), "+OK hello from -o")

    def test_echo_and_quit(self):
        self.start_echo()
        client = self.client()
        self.assertEqual(client.command("ECHO hello world"), "+OK hello world")
        self.assertEqual(client.command("QUIT"), "+OK bye")
        self.assertTrue(client.at_eof())

    def test_pipelined_commands_in_one_write(self):
        self.start_echo()
        client = self.client()
        client.send("".join(f"ECHO {i}\r\n" for i in range(200)))
        for i in range(200):
            self.assertEqual(client.line(), f"+OK {i}")

    def test_line_limit_exact_and_over(self):
        self.start_echo("max_line = 100;")
        client = self.client()
        self.assertEqual(client.command("ECHO " + "a" * 95), "+OK " + "a" * 95)
        self.assertEqual(client.command("ECHO " + "b" * 96), "-ERR line too long")
        # A huge line is discarded as it streams; the next line is intact.
        client.send("ECHO " + "c" * 1_000_000 + "\r\n")
        self.assertEqual(client.line(), "-ERR line too long")
        self.assertEqual(client.command("ECHO next"), "+OK next")

    def test_nul_bare_lf_and_bare_cr(self):
        self.start_echo()
        client = self.client()
        self.assertEqual(client.command("ECHO a\0b"), "-ERR bad line")
        client.send("ECHO bare lf\n")
        self.assertEqual(client.line(), "-ERR bad line")
        client.send("ECHO bare\rcr\r\n")
        self.assertEqual(client.line(), "-ERR bad line")
        self.assertEqual(client.command("ECHO ok"), "+OK ok")

    def test_one_byte_writes(self):
        self.start_echo()
        client = self.client()
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in b"ECHO slow\r\n":
            client.send(bytes([byte]))
            time.sleep(0.002)
        self.assertEqual(client.line(), "+OK slow")

    def test_client_vanishes_mid_command(self):
        daemon = self.start_echo()
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", self.port))
            sock.sendall(b"ECHO never finish")
            sock.close()
        client = self.client()
        self.assertEqual(client.command("ECHO alive"), "+OK alive")
        def echo_conns():
            conns = json.loads(daemon.ctl("conns", "--json")[1])
            return [c for c in conns if c["module"] == "testecho"]
        wait_for(lambda: len(echo_conns()) == 1, what="the vanished clients' conns to close")

    def test_idle_timeout(self):
        self.start_echo('idle_timeout = "1s";')
        client = self.client()
        started = time.monotonic()
        self.assertEqual(client.line(), "-ERR idle timeout")
        self.assertTrue(client.at_eof())
        self.assertLess(time.monotonic() - started, 5)

    def test_activity_defers_idle_timeout(self):
        self.start_echo('idle_timeout = "1s";')
        client = self.client()
        for i in range(4):
            time.sleep(0.5)
            self.assertEqual(client.command(f"ECHO {i}"), f"+OK {i}")

    def test_per_ip_limit(self):
        self.start_echo("max_per_ip = 2;")
        first, second = self.client(), self.client()
        third = LineClient(self.port)
        self.addCleanup(third.close)
        self.assertEqual(third.line(), "-ERR too many connections")
        self.assertTrue(third.at_eof())
        first.command("QUIT")
        self.assertTrue(first.at_eof())
        # The slot is released on close.
        wait_for(lambda: self._greets(), what="a free slot")
        self.assertEqual(second.command("ECHO still"), "+OK still")

    def _greets(self):
        client = LineClient(self.port)
        try:
            return client.line() == "+OK testecho ready"
        finally:
            client.close()

    def test_global_limit(self):
        self.start_echo(overrides=["max_connections=3"])
        clients = [self.client() for _ in range(3)]
        refused = LineClient(self.port)
        self.addCleanup(refused.close)
        self.assertEqual(refused.line(), "-ERR too many connections")
        self.assertEqual(clients[0].command("ECHO x"), "+OK x")

    def test_no_fd_leak_after_10000_connections(self):
        daemon = self.start_echo()
        warm = self.client()
        warm.command("QUIT")
        time.sleep(0.2)
        baseline = daemon.fd_count()
        for i in range(10_000):
            sock = socket.create_connection(("127.0.0.1", self.port))
            if i % 3 == 0:
                sock.recv(100)
            if i % 3 == 1:
                sock.sendall(b"ECHO x\r\nQUIT\r\n")
            sock.close()
        wait_for(lambda: daemon.fd_count() == baseline, timeout=20,
                 what=f"fd count back to {baseline} (now {daemon.fd_count()})")
        status, out, _ = daemon.ctl("testecho", "stats")
        self.assertEqual(status, 0)
        opened = int(out.split()[1])
        closed = int(out.split()[3])
        self.assertGreaterEqual(opened, 10_001)
        self.assertEqual(opened, closed)


class Tls(EchoTestCase):
    def setUp(self):
        self.certdir = os.environ.get("TMPDIR", "/tmp")
        import tempfile
        self.certdir = tempfile.mkdtemp(prefix="postern-cert-")
        self.cert, self.key = make_cert(self.certdir)
        self.context = ssl.create_default_context(cafile=self.cert)
        self.context.check_hostname = False

    def tearDown(self):
        import shutil
        shutil.rmtree(self.certdir, ignore_errors=True)

    def tls_extra(self, more=""):
        return f'cert_file = "{self.cert}"; key_file = "{self.key}"; {more}'

    def test_starttls_discards_pipelined_bytes(self):
        self.start_echo(self.tls_extra())
        client = self.client()
        # The injection: commands sent in the same packet as STARTTLS must
        # never be executed inside the TLS session.
        client.send("STARTTLS\r\nECHO injected\r\n")
        self.assertEqual(client.line(), "+OK begin TLS")
        self.assertEqual(client.buffer, b"")
        tls = self.context.wrap_socket(client.sock, server_hostname="localhost")
        secure = LineClient(self.port, sock=tls)
        self.assertEqual(secure.line(), "+OK TLS ready")
        self.assertEqual(secure.command("TLS"), "+OK tls")
        self.assertEqual(secure.command("ECHO after"), "+OK after")
        self.assertEqual(secure.command("QUIT"), "+OK bye")

    def test_implicit_tls(self):
        tls_port = free_port()
        self.start_echo(self.tls_extra(f'tls_listen = ("127.0.0.1:{tls_port}");'))
        raw = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
        tls = self.context.wrap_socket(raw, server_hostname="localhost")
        client = LineClient(tls_port, sock=tls)
        self.addCleanup(client.close)
        self.assertEqual(client.line(), "+OK testecho ready")
        self.assertEqual(client.command("TLS"), "+OK tls")

    def test_openssl_s_client(self):
        tls_port = free_port()
        self.start_echo(self.tls_extra(f'tls_listen = ("127.0.0.1:{tls_port}");'))
        proc = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{tls_port}",
                               "-quiet", "-CAfile", self.cert],
                              input=b"ECHO via s_client\r\nQUIT\r\n", capture_output=True,
                              timeout=20)
        self.assertIn(b"+OK via s_client", proc.stdout)

    def test_garbage_handshake_is_released(self):
        tls_port = free_port()
        daemon = self.start_echo(self.tls_extra(f'tls_listen = ("127.0.0.1:{tls_port}");'))
        baseline = daemon.fd_count()
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", tls_port))
            sock.sendall(b"\x16\x03\x01garbage that is not a client hello\r\n" * 10)
            sock.close()
        client = self.client()
        self.assertEqual(client.command("STARTTLS"), "+OK begin TLS")
        client.send(b"not tls at all\r\n")
        self.assertTrue(client.at_eof())
        wait_for(lambda: daemon.fd_count() == baseline, what="fds released")


class Control(EchoTestCase):
    def test_status_modules_conns_json(self):
        daemon = self.start_echo()
        client = self.client()
        self.assertEqual(client.command("STATE DATA"), "+OK")
        status, out, err = daemon.ctl("status", "--json")
        self.assertEqual(status, 0, err)
        info = json.loads(out)
        self.assertEqual(info["pid"], daemon.pid)
        status, out, _ = daemon.ctl("--json", "modules")
        self.assertEqual(status, 0)
        self.assertIn("testecho", out)
        json.loads(out)
        status, out, _ = daemon.ctl("conns", "--json")
        self.assertEqual(status, 0)
        conns = json.loads(out)
        mine = [c for c in conns if c.get("state") == "DATA"]
        self.assertEqual(len(mine), 1, conns)
        status, out, _ = daemon.ctl("conns")
        self.assertIn("DATA", out)
        status, out, _ = daemon.ctl("bus")
        self.assertEqual(status, 0)
        self.assertIn("core.conn.opened", out)

    def test_unknown_command_and_unreachable_daemon(self):
        daemon = self.start_echo()
        status, _, err = daemon.ctl("frobnicate")
        self.assertEqual(status, 1)
        self.assertIn("unknown command", err)
        daemon.stop()
        status, _, err = daemon.ctl("status")
        self.assertEqual(status, 3)
        self.assertIn("is posternd running", err)

    def test_help_lists_module_commands(self):
        daemon = self.start_echo()
        status, out, _ = daemon.ctl("help")
        self.assertEqual(status, 0)
        for word in ("status", "modules", "conns", "reload", "testecho"):
            self.assertIn(word, out)


class Reload(EchoTestCase):
    def test_sighup_applies_good_config_and_keeps_connections(self):
        daemon = self.start_echo()
        old = self.client()
        daemon.write_config(echo_config(self.port, 'greeting = "reloaded";'))
        daemon.signal(signal.SIGHUP)
        daemon.wait_log("configuration reloaded (generation 2)")
        self.assertEqual(old.command("ECHO still here"), "+OK still here")
        new = LineClient(self.port)
        self.addCleanup(new.close)
        self.assertEqual(new.line(), "+OK reloaded")

    def test_broken_config_is_refused(self):
        daemon = self.start_echo()
        old = self.client()
        daemon.write_config(echo_config(self.port, "greeting = ;"))
        daemon.signal(signal.SIGHUP)
        daemon.wait_log("reload refused")
        self.assertIsNone(daemon.proc.poll())
        self.assertEqual(old.command("ECHO alive"), "+OK alive")
        self.client()  # still greets with the old text
        daemon.write_config(echo_config(self.port, "bogus_key = 1;"))
        status, out, err = daemon.ctl("reload")
        self.assertEqual(status, 1)
        self.assertIn("bogus_key", err)
        status, out, _ = daemon.ctl("status", "--json")
        self.assertEqual(json.loads(out)["generation"], 1)

    def test_posternctl_reload(self):
        daemon = self.start_echo()
        daemon.write_config(echo_config(self.port, 'greeting = "via ctl";'))
        status, out, err = daemon.ctl("reload")
        self.assertEqual(status, 0, err)
        self.assertIn("generation 2", out)
        client = LineClient(self.port)
        self.addCleanup(client.close)
        self.assertEqual(client.line(), "+OK via ctl")


class Shutdown(EchoTestCase):
    def test_sigterm_lets_sessions_finish(self):
        daemon = self.start_echo()
        client = self.client()
        daemon.signal(signal.SIGTERM)
        daemon.wait_log("shutting down")
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=2).recv(10)
        self.assertEqual(client.command("ECHO finishing"), "+OK finishing")
        self.assertEqual(client.command("QUIT"), "+OK bye")
        self.assertEqual(daemon.proc.wait(timeout=10), 0)
        self.assertFalse(os.path.exists(daemon.pidfile))

    def test_deadline_closes_idle_sessions(self):
        daemon = self.start_echo(overrides=['shutdown_timeout="1s"'])
        client = self.client()
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        self.assertTrue(client.at_eof(timeout=10))
        self.assertEqual(daemon.proc.wait(timeout=10), 0)
        self.assertLess(time.monotonic() - started, 6)

    def test_pidfile_refuses_second_daemon(self):
        daemon = self.start_echo()
        with open(daemon.pidfile) as f:
            self.assertEqual(int(f.read()), daemon.pid)
        second = subprocess.run(daemon.args("-F", "-o", f'testecho.listen=("127.0.0.1:{free_port()}")'),
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(second.returncode, 1)
        self.assertIn(f"another posternd is running (pid {daemon.pid}", second.stderr)

    def test_stale_pidfile_after_kill_is_taken_over(self):
        daemon = self.start_echo()
        daemon.kill()
        self.assertTrue(os.path.exists(daemon.pidfile))
        daemon.start()
        client = self.client()
        self.assertEqual(client.command("ECHO back"), "+OK back")


@unittest.skipUnless(os.geteuid() == 0, "needs root to drop privileges")
class Privileges(EchoTestCase):
    def test_drops_to_configured_user(self):
        port = free_port()
        self.port = port
        daemon = Posternd(self, echo_config(port) + 'user = "nobody";\ngroup = "nogroup";\n')
        os.chmod(daemon.base, 0o755)
        daemon.start()
        with open(f"/proc/{daemon.pid}/status") as f:
            uid_line = next(line for line in f if line.startswith("Uid:"))
        nobody = int(subprocess.check_output(["id", "-u", "nobody"]))
        self.assertEqual([int(x) for x in uid_line.split()[1:]], [nobody] * 4)
        client = self.client()
        self.assertEqual(client.command("ECHO unprivileged"), "+OK unprivileged")
        self.assertEqual(daemon.ctl("status")[0], 0)



class Packaging(unittest.TestCase):
    def test_every_integration_file_is_distributed(self):
        """tests/local.mk lists the integration files one by one: a new
        test that is not listed would be missing from the release tarball."""
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(SRCDIR, "tests", "local.mk")) as f:
            local_mk = f.read()
        for name in sorted(os.listdir(here)):
            if name.endswith((".py", ".c")) or name == "run":
                listed = f"tests/integration/{name}" in local_mk
                if name.endswith(".c"):  # built from a module's local.mk
                    continue
                self.assertTrue(listed, f"tests/integration/{name} is not in EXTRA_DIST")


if __name__ == "__main__":
    unittest.main()
