"""Start and drive a real posternd for integration tests.

Every daemon runs in its own temporary base_dir on 127.0.0.1 ports picked
at random, in its own process group, and is killed (by pid, with SIGKILL if
it does not stop) when the test ends, even when the test fails. A daemon's
stderr is its log (-F); when it ran under ASan/UBSan, any sanitizer report
in it fails the test.
"""
import atexit
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SRCDIR = os.environ.get("top_srcdir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILDDIR = os.environ.get("top_builddir") or os.path.join(SRCDIR, "build", "dev")
POSTERND = os.path.join(BUILDDIR, "core", "posternd")
POSTERNCTL = os.path.join(BUILDDIR, "core", "posternctl")
# Where modules are built: protocol modules and the test-only ones.
MODULE_DIRS = [os.path.join(BUILDDIR, "modules", ".libs"),
               os.path.join(BUILDDIR, "tests", "modules", ".libs")]

_live = set()


def _kill_leftovers():
    for proc in list(_live):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


atexit.register(_kill_leftovers)

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


_ports_handed_out = set()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


_EPHEMERAL = _ephemeral_range()
# Listening ports come from below the ephemeral range, so that no outgoing
# connection (a client's, a health check's) can take one between this
# check and the daemon's bind; test files run in parallel, so each process
# starts at its own random place.
_PORT_LOW, _PORT_HIGH = (10000, _EPHEMERAL[0]) if _EPHEMERAL[0] > 12000 else (61000, 65000)
_port_rng = random.Random(os.getpid() ^ int(time.time() * 1000))


def free_port():
    """A TCP port on 127.0.0.1 that nothing uses right now, outside the
    kernel's ephemeral range, and that this process has not handed out
    before (a config with two listeners on one port would not start)."""
    while True:
        port = _port_rng.randrange(_PORT_LOW, _PORT_HIGH)
        if port in _ports_handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_handed_out.add(port)
        return port


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_cert(directory, name="server"):
    """A self-signed certificate and key for 127.0.0.1 / localhost."""
    cert = os.path.join(directory, f"{name}.crt")
    key = os.path.join(directory, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


class Posternd:
    """One posternd process with its own config and base_dir.

    `body` is the config text after the core settings (module groups and
    the modules list); `{base}` in it is replaced by the base directory.
    """

    def __init__(self, test, body, overrides=(), name="posternd"):
        self.test = test
        self.base = tempfile.mkdtemp(prefix=f"postern-{name}-")
        test.addCleanup(self.cleanup)
        self.moddir = os.path.join(self.base, "modules")
        os.makedirs(self.moddir)
        for directory in MODULE_DIRS:
            if os.path.isdir(directory):
                for entry in os.listdir(directory):
                    if entry.endswith(".so"):
                        dest = os.path.join(self.moddir, entry)
                        if not os.path.exists(dest):
                            os.symlink(os.path.join(directory, entry), dest)
        self.socket = os.path.join(self.base, "run", "postern.sock")
        self.pidfile = os.path.join(self.base, "run", "posternd.pid")
        self.logfile = os.path.join(self.base, "posternd.log")
        self.config = os.path.join(self.base, "postern.conf")
        self.overrides = list(overrides)
        self.proc = None
        self.write_config(body)

    def write_config(self, body):
        text = (f'base_dir = "{self.base}";\n'
                f'module_dir = "{self.moddir}";\n'
                'pid_file = "run/posternd.pid";\n'
                'control_socket = "run/postern.sock";\n'
                'log_level = "debug";\n'
                'shutdown_timeout = "5s";\n' + body.replace("{base}", self.base) + "\n")
        with open(self.config, "w") as f:
            f.write(text)

    def args(self, *extra):
        args = [POSTERND, "-c", self.config]
        for override in self.overrides:
            args += ["-o", override]
        return args + list(extra)

    def check(self):
        """posternd -t: (exit status, output)."""
        proc = subprocess.run(self.args("-t"), capture_output=True, text=True, timeout=30)
        return proc.returncode, proc.stdout + proc.stderr

    def start(self, wait=True):
        log = open(self.logfile, "ab")
        self.proc = subprocess.Popen(self.args("-F"), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        _live.add(self.proc)
        if wait:
            wait_for(self._ready, timeout=20, what=f"posternd to start (log: {self.log()[-2000:]})")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"posternd exited with {self.proc.returncode}:\n{self.log()}")
        return self.ctl("status")[0] == 0

    @property
    def pid(self):
        return self.proc.pid

    def ctl(self, *args, timeout=30):
        """posternctl -s SOCKET ARGS: (exit status, stdout, stderr)."""
        proc = subprocess.run([POSTERNCTL, "-s", self.socket] + list(args),
                              capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout, proc.stderr

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, text, timeout=10.0):
        return wait_for(lambda: text in self.log(), timeout=timeout, what=f"log line {text!r}")

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    _RELOAD_OUTCOME = re.compile(r"configuration reloaded \(generation \d+\)|reload refused")

    def reload(self, body):
        """Write a new configuration and SIGHUP; returns once posternd has
        applied it, raises AssertionError (with the log's tail) if it was
        refused."""
        def outcomes():
            return self._RELOAD_OUTCOME.findall(self.log())

        before = len(outcomes())
        self.write_config(body)
        self.signal(signal.SIGHUP)
        wait_for(lambda: len(outcomes()) > before, what="the reload")
        if outcomes()[-1] == "reload refused":
            raise AssertionError("reload refused:\n" + self.log()[-2000:])

    def stop(self, timeout=15.0):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            _live.discard(self.proc)

    def kill(self):
        """SIGKILL, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        _live.discard(self.proc)

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def sanitizer_report(self):
        log = self.log()
        for marker in SANITIZER_MARKERS:
            index = log.find(marker)
            if index >= 0:
                return log[max(0, index - 200):index + 3000]
        return None

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        _live.discard(self.proc)
        report = self.sanitizer_report()
        if os.environ.get("POSTERN_KEEP_TMP"):
            print(f"kept {self.base}")
        else:
            shutil.rmtree(self.base, ignore_errors=True)
        if report:
            raise AssertionError(f"sanitizer report in posternd's log:\n{report}")


class LineClient:
    """A line-oriented TCP client with timeouts, for hand-made sessions."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, sock=None):
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buffer = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        """The next line without CRLF, or None at EOF."""
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                if self.buffer:
                    rest, self.buffer = self.buffer, b""
                    return rest.decode(errors="replace")
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def command(self, text):
        self.send(text + "\r\n")
        return self.line()

    def at_eof(self, timeout=10.0):
        """True if the server closed the connection (after any pending lines)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buffer += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
