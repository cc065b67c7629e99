"""Local AWS API servers for the end-to-end tests, started on free loopback
ports and stopped by pid.

    kinesalite 3.3.3  Kinesis    (npm, tests/aws-local)
    s3rver 3.7.1      S3         (npm; accepts only the key pair S3RVER/S3RVER)
    dynalite 4.0.0    DynamoDB   (npm)
    moto_server       Kinesis, S3, DynamoDB (this machine's pyenv Python)

The npm packages come from `npm ci --prefix tests/aws-local` (.ci/run and
tools/dev run it). A test whose server is missing is skipped and says
which command installs it. kinesalite has no host option: a preload
(tests/aws-local/loopback.js) binds it to 127.0.0.1.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

SRC = os.environ.get("ENRICH_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))
NPM_DIR = os.path.join(SRC, "tests", "aws-local")
NODE_MODULES = os.path.join(NPM_DIR, "node_modules")

# One key pair for every server (s3rver checks it; the others accept any).
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "S3RVER",
    "AWS_SECRET_ACCESS_KEY": "S3RVER",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_PAGER": "",
}


def set_aws_env():
    """Point boto3 in this process at the dummy credentials."""
    os.environ.update(AWS_ENV)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(k, None)


def heavy_skip_reason():
    """Why the network-bound suites do not run in this setup, or None."""
    if os.environ.get("ENRICH_UNDER_ASAN"):
        return "end-to-end tests exercise Python and network code only: not under ASan"
    if os.environ.get("ENRICH_UNDER_VALGRIND"):
        return "end-to-end tests exercise Python and network code only: not under valgrind"
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node():
    return shutil.which("node") or shutil.which("nodejs")


def moto_server_path():
    path = shutil.which("moto_server")
    if path:
        return path
    pyenv = shutil.which("pyenv")
    if pyenv:
        r = subprocess.run([pyenv, "which", "moto_server"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip()
    return None


class Server:
    """One server process on a free loopback port; stop() kills that pid."""

    def __init__(self, name, argv_for_port, workdir=None, env=None, ready_timeout=30):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", delete=False)
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(argv_for_port(self.port), cwd=workdir, env=e,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}: {self.logtext()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{name} did not listen on {self.port} within "
                                       f"{ready_timeout} s: {self.logtext()}")
                time.sleep(0.05)

    def logtext(self):
        try:
            with open(self.log.name, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


def _npm_script(package, rel):
    path = os.path.join(NODE_MODULES, package, rel)
    if not node():
        raise unittest.SkipTest("node not found (apt-get install nodejs npm)")
    if not os.path.exists(path):
        raise unittest.SkipTest(f"{package} is not installed (npm ci --prefix tests/aws-local)")
    return path


def kinesalite():
    cli = _npm_script("kinesalite", "cli.js")
    preload = os.path.join(NPM_DIR, "loopback.js")
    return Server("kinesalite", lambda p: [node(), "-r", preload, cli, "--port", str(p),
                                           "--createStreamMs", "20", "--deleteStreamMs", "20",
                                           "--updateStreamMs", "20", "--shardLimit", "50"])


def s3rver(data_dir):
    cli = _npm_script("s3rver", os.path.join("bin", "s3rver.js"))
    return Server("s3rver", lambda p: [node(), cli, "-d", data_dir, "-a", "127.0.0.1",
                                       "-p", str(p), "--silent"])


def dynalite():
    cli = _npm_script("dynalite", "cli.js")
    return Server("dynalite", lambda p: [node(), cli, "--host", "127.0.0.1", "--port", str(p),
                                         "--createTableMs", "20"])


def start_all(*factories):
    """Start several servers at once (each factory a callable returning a
    Server): node's start-up is most of a server's start, and they do not
    depend on each other. Returns them in order; if one fails, the others
    are stopped and its error (SkipTest included) is raised."""
    import threading
    results = [None] * len(factories)
    errors = []

    def start(i, factory):
        try:
            results[i] = factory()
        except BaseException as e:  # noqa: BLE001  (re-raised in the caller's thread)
            errors.append(e)
    threads = [threading.Thread(target=start, args=(i, f)) for i, f in enumerate(factories)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for s in results:
            if s is not None:
                s.stop()
        raise errors[0]
    return results


def moto():
    path = moto_server_path()
    if not path:
        raise unittest.SkipTest("moto_server not found (it comes with moto in this machine's "
                                "pyenv Python; `pyenv which moto_server`)")
    return Server("moto", lambda p: [path, "-H", "127.0.0.1", "-p", str(p)])


# -- the tools the tests drive --------------------------------------------------

AWS_CLI = "/usr/bin/aws"      # Debian's awscli: CLI v2, as the recipe's steps are written


def aws_cli(endpoint, *args, check=True):
    """Run Debian's AWS CLI v2 against endpoint; returns stdout (str)."""
    if not os.path.exists(AWS_CLI):
        raise unittest.SkipTest("Debian's AWS CLI v2 is not installed (apt-get install awscli)")
    env = dict(os.environ)
    env.update(AWS_ENV)
    r = subprocess.run([AWS_CLI, "--endpoint-url", endpoint, "--output", "json", *args],
                       env=env, capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)}: exit {r.returncode}: {r.stderr}")
    return r.stdout


def enrich_cmd(*args, timeout=600, check=True, env=None, **popen):
    """python3 -m enrich ARGS (this interpreter, the build tree's package);
    env: more variables for it."""
    import sys
    env = dict(os.environ, **(env or {}))
    env.update(AWS_ENV)
    r = subprocess.run([sys.executable, "-m", "enrich", *args], env=env, capture_output=True,
                       text=True, timeout=timeout, **popen)
    if check and r.returncode != 0:
        raise AssertionError(f"enrich {' '.join(args)}: exit {r.returncode}:\n{r.stderr}")
    return r


def duckdb_query(sql):
    """Rows (dicts) of one DuckDB query (tests/duckdb/query.mjs)."""
    import json
    if not node():
        raise unittest.SkipTest("node not found (apt-get install nodejs npm)")
    r = subprocess.run([node(), os.path.join(SRC, "tests", "duckdb", "query.mjs"), sql],
                       capture_output=True, text=True, timeout=120)
    if r.returncode == 77:
        raise unittest.SkipTest(r.stdout.strip())
    if r.returncode != 0:
        raise AssertionError(f"duckdb: {r.stderr}")
    return json.loads(r.stdout)


def emf_totals(text, dimension):
    """Sums of every counter over the EMF lines in text whose dimension set
    is [dimension] (the consumer's StreamName, the delivery's DeliveryStream)."""
    import json
    totals = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith('{"_aws"'):
            continue
        doc = json.loads(line)
        cwm = doc["_aws"]["CloudWatchMetrics"][0]
        if cwm["Dimensions"] != [[dimension]]:
            continue
        for m in cwm["Metrics"]:
            if m["Unit"] in ("Count", "Bytes"):
                totals[m["Name"]] = totals.get(m["Name"], 0) + doc.get(m["Name"], 0)
    return totals
