"""Start the tests' local servers as child processes on free loopback
ports (each binds port 0 and prints "listening HOST:PORT") and stop them
by pid."""
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("ENRICH_SRCDIR") or os.path.abspath(os.path.join(HERE, "..", "..", ".."))
BUILDDIR = os.environ.get("ENRICH_BUILDDIR", "")
UNDER_ASAN = bool(os.environ.get("ENRICH_UNDER_ASAN"))
UNDER_VALGRIND = bool(os.environ.get("ENRICH_UNDER_VALGRIND"))


class Server:
    def __init__(self, script):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, script)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"{script} did not start: {line!r}")
        self.address = line.split()[1]
        self.url = "http://" + self.address

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
