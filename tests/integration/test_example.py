"""The out-of-tree example module builds against the *installed* headers
and runs in the installed posternd."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILDDIR, SRCDIR, LineClient, Posternd, free_port


class ExampleModule(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="postern-install-")
        self.addCleanup(shutil.rmtree, self.root, True)

    def run_checked(self, args, **kwargs):
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
        self.assertEqual(proc.returncode, 0, f"{args}:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def test_builds_against_installed_headers_and_loads(self):
        destdir = os.path.join(self.root, "dest")
        self.run_checked(["make", "-s", "-C", BUILDDIR, "install", f"DESTDIR={destdir}"])
        prefix = self.run_checked(["sed", "-n", "s/^prefix=//p",
                                   os.path.join(BUILDDIR, "postern.pc")]).strip()
        pcdirs = [os.path.join(destdir + prefix, d, "pkgconfig") for d in ("lib", "lib64")]
        env = dict(os.environ,
                   PKG_CONFIG_PATH=":".join(pcdirs),
                   PKG_CONFIG_SYSROOT_DIR=destdir,
                   PKG_CONFIG_LIBDIR="")
        cflags = self.run_checked(["pkg-config", "--cflags", "postern"], env=env)
        self.assertIn(destdir, cflags)  # the installed headers, not the source tree
        moduledir = self.run_checked(["pkg-config", "--variable=moduledir", "postern"],
                                     env=env).strip()
        self.assertTrue(moduledir.endswith("/postern/modules"), moduledir)

        build = os.path.join(self.root, "example")
        shutil.copytree(os.path.join(SRCDIR, "examples", "conncount"), build)
        # -I of the source tree must not be needed: build with only pkg-config's flags.
        self.run_checked(["make", "-s", "-C", build, "CFLAGS=-O1 -Werror"], env=env)
        self.run_checked(["make", "-s", "-C", build, "install", f"DESTDIR={destdir}"],
                         env=env)
        installed_moddir = destdir + moduledir
        self.assertTrue(os.path.exists(os.path.join(installed_moddir, "conncount.so")))
        for page in ("man8/posternd.8", "man8/posternctl.8", "man5/postern.conf.5"):
            self.assertTrue(os.path.exists(os.path.join(destdir + prefix, "share", "man", page)),
                            page)

        # Run the installed posternd with the example and the test protocol.
        port = free_port()
        posternd = os.path.join(destdir + prefix, "sbin", "posternd")
        daemon = Posternd(self, f'modules = ("testecho", "conncount");\n'
                                f'testecho = {{ listen = ("127.0.0.1:{port}"); }};\n'
                                'conncount = { log_every = 2; };\n')
        shutil.copy(os.path.join(installed_moddir, "conncount.so"), daemon.moddir)
        import harness
        saved = harness.POSTERND
        harness.POSTERND = posternd
        try:
            daemon.start()
        finally:
            harness.POSTERND = saved
        for _ in range(4):
            client = LineClient(port)
            self.assertEqual(client.line(), "+OK testecho ready")
            self.assertEqual(client.command("QUIT"), "+OK bye")
            self.assertTrue(client.at_eof())
            client.close()
        status, out, err = daemon.ctl("conncount", "--json")
        self.assertEqual(status, 0, err)
        counts = json.loads(out)
        self.assertEqual(counts["testecho"]["total"], 4)
        daemon.wait_log("conncount: info: 4 connections so far")


if __name__ == "__main__":
    unittest.main()
