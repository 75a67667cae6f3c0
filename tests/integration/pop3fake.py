"""Fake POP3 back-ends for pop3fe's tests: well-behaved ones and every kind
of broken one a front-end must survive.

A FakeBackend listens on 127.0.0.1 in a thread of the test process (or, run
as a script, in a process of its own that a test can SIGKILL). Its `mode`
says how it greets new connections; `on_retr` says what it does when a
logged-in client sends RETR (to break mid-session). Both can be changed
while it runs.

  greeting modes: good, silent (accept, never answer), garbage, reset
                  (RST at once), trickle (the greeting one byte a second),
                  err (a -ERR greeting)
  login answers:  login = "ok" | "temp" ([SYS/TEMP]) | "in-use" | "auth"
  on_retr:        None, "die" (close), "rst", "silent", "trickle",
                  "garbage", "half" (half a message, then silence)

    python3 pop3fake.py PORT [MODE]     # a back-end process of its own
"""
import socket
import struct
import sys
import threading
import time

MESSAGE_COUNT = 3


def message(i, size=2000):
    """Message i (1-based): headers and a body of about `size` bytes."""
    head = (f"From: sender{i}@example.test\r\nTo: user@example.test\r\n"
            f"Subject: message {i}\r\nMessage-ID: <{i}@fake.test>\r\n\r\n")
    line = f"line of message {i} " + "x" * 50 + "\r\n"
    body = (line * (size // len(line) + 1))[:size]
    return (head + body.rsplit("\r\n", 1)[0] + "\r\n").encode()


class FakeBackend:
    def __init__(self, mode="good", port=0, login="ok", messages=MESSAGE_COUNT, size=2000,
                 name="fake"):
        self.mode = mode
        self.login = login
        self.on_retr = None
        self.name = name
        self.messages = [message(i + 1, size) for i in range(messages)]
        self.lock = threading.Lock()
        self.xclients = []       # XCLIENT lines received
        self.logins = 0          # successful logins
        self.commands = []       # every line received (after login too)
        self.connections = 0     # accepted
        self.open = set()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self):
        self.closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            conns = list(self.open)
        for conn in conns:
            # shutdown first: a makefile() reader keeps the fd open past close().
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                conn.close()
            except OSError:
                pass

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    # ---- one connection -------------------------------------------------

    @staticmethod
    def _rst(conn):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    def _sleep_until_closed(self, conn, seconds=600):
        """Hold the connection open without answering; read and drop."""
        conn.settimeout(0.5)
        deadline = time.monotonic() + seconds
        while not self.closed and time.monotonic() < deadline:
            try:
                if not conn.recv(4096):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def _trickle(self, conn, data):
        for byte in data * 100:
            if self.closed:
                return
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(1)

    def _serve(self, conn):
        try:
            self._session(conn)
        except OSError:
            pass
        finally:
            with self.lock:
                self.open.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _session(self, conn):
        mode = self.mode
        if mode == "silent":
            return self._sleep_until_closed(conn)
        if mode == "reset":
            return self._rst(conn)
        if mode == "garbage":
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            return self._sleep_until_closed(conn, 30)
        if mode == "trickle":
            return self._trickle(conn, b"+OK trickling greeting\r\n")
        if mode == "err":
            conn.sendall(b"-ERR [SYS/TEMP] too busy\r\n")
            return
        conn.sendall(f"+OK {self.name} ready\r\n".encode())
        reader = conn.makefile("rb")
        user = None
        logged_in = False
        deleted = set()
        while True:
            raw = reader.readline(65536)
            if not raw:
                return
            line = raw.rstrip(b"\r\n").decode(errors="replace")
            with self.lock:
                self.commands.append(line)
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if not logged_in:
                if verb == "XCLIENT":
                    with self.lock:
                        self.xclients.append(line)
                    conn.sendall(b"+OK\r\n")
                elif verb == "USER":
                    user = arg
                    conn.sendall(b"+OK\r\n")
                elif verb in ("PASS", "AUTH"):
                    answer = {"ok": b"+OK Logged in.\r\n",
                              "temp": b"-ERR [SYS/TEMP] storage unavailable\r\n",
                              "in-use": b"-ERR [IN-USE] mailbox locked\r\n",
                              "auth": b"-ERR [AUTH] Authentication failed.\r\n"}[self.login]
                    if self.login == "ok":
                        logged_in = True
                        # Counted before the answer: a test that got +OK
                        # through the proxy must see the count.
                        with self.lock:
                            self.logins += 1
                    conn.sendall(answer)
                elif verb == "QUIT":
                    conn.sendall(b"+OK bye\r\n")
                    return
                else:
                    conn.sendall(b"-ERR not logged in\r\n")
                continue
            if not self._transaction(conn, verb, arg, deleted):
                return

    def _transaction(self, conn, verb, arg, deleted):
        msgs = self.messages
        if verb == "STAT":
            live = [m for i, m in enumerate(msgs) if i + 1 not in deleted]
            conn.sendall(f"+OK {len(live)} {sum(map(len, live))}\r\n".encode())
        elif verb == "LIST" and arg:
            conn.sendall(f"+OK {arg} {len(msgs[int(arg) - 1])}\r\n".encode())
        elif verb == "UIDL" and arg:
            conn.sendall(f"+OK {arg} uid{arg}\r\n".encode())
        elif verb == "LIST":
            out = f"+OK {len(msgs)} messages\r\n"
            for i, m in enumerate(msgs):
                if i + 1 not in deleted:
                    out += f"{i + 1} {len(m)}\r\n"
            conn.sendall((out + ".\r\n").encode())
        elif verb == "UIDL":
            out = "+OK\r\n" + "".join(f"{i + 1} uid{i + 1}\r\n" for i in range(len(msgs))
                                      if i + 1 not in deleted)
            conn.sendall((out + ".\r\n").encode())
        elif verb == "RETR":
            return self._retr(conn, arg)
        elif verb == "DELE":
            deleted.add(int(arg))
            conn.sendall(b"+OK deleted\r\n")
        elif verb == "NOOP":
            conn.sendall(b"+OK\r\n")
        elif verb == "QUIT":
            conn.sendall(b"+OK bye\r\n")
            return False
        else:
            conn.sendall(b"-ERR unknown\r\n")
        return True

    def _retr(self, conn, arg):
        try:
            msg = self.messages[int(arg) - 1]
        except (ValueError, IndexError):
            conn.sendall(b"-ERR no such message\r\n")
            return True
        action = self.on_retr
        if action == "die":
            conn.shutdown(socket.SHUT_RDWR)
            return False
        if action == "rst":
            self._rst(conn)
            return False
        if action == "silent":
            self._sleep_until_closed(conn)
            return False
        if action == "trickle":
            self._trickle(conn, b"+OK " + b"x" * 100)
            return False
        if action == "garbage":
            conn.sendall(b"\x00\xff garbage without end " * 10)
            self._sleep_until_closed(conn)
            return False
        data = b"+OK " + str(len(msg)).encode() + b" octets\r\n" + msg + b".\r\n"
        if action == "half":
            conn.sendall(data[:len(data) // 2])
            self._sleep_until_closed(conn)
            return False
        conn.sendall(data)
        return True


if __name__ == "__main__":
    backend = FakeBackend(mode=sys.argv[2] if len(sys.argv) > 2 else "good",
                          port=int(sys.argv[1]), name=f"fake{sys.argv[1]}")
    print("ready", flush=True)
    while True:
        time.sleep(3600)
