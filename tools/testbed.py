#!/usr/bin/env python3
"""The test bed: a real ClickHouse engine behind ClickHouse's HTTP interface, and a real S3 server.

Run it through tools/testbed, which installs what is missing first (tools/setup) and uses the venv's
Python. Subcommands:

  up                   start whatever is not running, wait until both answer, create the bucket,
                       write <state>/env and <state>/config.yml; a no-op when all is up already
  down [--purge]       stop exactly the processes the test bed started (SIGTERM to each process
                       group, SIGKILL after $INPLACE_TESTBED_STOP_TIMEOUT, default 10 s: SeaweedFS'
                       filer always needs 15 s to stop gracefully, so it is killed; its data is
                       safe, being written through the kernel), remove <state>/env and config.yml
                       (they describe a running test bed); --purge also deletes all its data
  status               what runs, on which ports; exit status 0 only when both answer
  restart-clickhouse   SIGKILL the ClickHouse server, start it again (same port, same data)
  kill-clickhouse      SIGKILL the ClickHouse server only
  start-clickhouse     start the ClickHouse server if it is not running

State lives in <repo>/.testbed (or $INPLACE_TESTBED_DIR): ports.json, credentials.json (random,
made by the first `up`; the ClickHouse password always holds `=&?*%#`, a space and non-ASCII
letters, as clickhouse-backup's test config does, and an older one is replaced),
clickhouse-config.xml (the engine's server config: <macros> cluster, shard, replica and version,
also exported in env as INPLACE_TESTBED_MACRO_<NAME>), pid files, clickhouse/ (the engine's data), seaweed/ (SeaweedFS' data),
logs/, and while up: env (sourceable) and config.yml (clickhouse-backup's format). Ports: a base
derived from a hash of the state folder's absolute path (so two checkouts do not collide) in
20000-59999, or $INPLACE_TESTBED_PORT_BASE; when a port is taken by another program the next base
(+10) is tried. ClickHouse HTTP = base, SeaweedFS master/volume/filer/S3 = base+1..+4, their gRPC
ports = base+5..+8. The venv is <repo>/.venv or $INPLACE_VENV. Python standard library only.

Started by root, the ClickHouse server runs as the system user inplace-ch (tools/setup makes it;
$INPLACE_TESTBED_CH_USER names another) with clickhouse/ owned by it (files of earlier runs are
given to it at each start), while the tests run inplace as root. The folders on the way to the
venv's Python, the server script and the data that this user cannot search get o+x (said on
stderr): a checkout under a 0700 folder (mktemp -d, /root) works.
"""

import argparse
import datetime
import errno
import fcntl
import hashlib
import hmac
import http.client
import json
import grp
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import string
import subprocess
import sys
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE = os.path.abspath(os.environ.get("INPLACE_TESTBED_DIR") or os.path.join(REPO, ".testbed"))
VENV = os.path.abspath(os.environ.get("INPLACE_VENV") or os.path.join(REPO, ".venv"))
SERVER_SCRIPT = os.path.join(REPO, "tools", "clickhouse_http_server.py")

HOST = "127.0.0.1"
CH_USER = "inplace"
# The unprivileged system user (made by tools/setup) the ClickHouse server runs as when the test bed
# is started by root, its data owned by it: as a packaged server runs as `clickhouse`.
CH_SYSTEM_USER = os.environ.get("INPLACE_TESTBED_CH_USER") or "inplace-ch"
BUCKET = "inplace-test"
REGION = "us-east-1"
S3_PATH = "backups"
PORT_OFFSETS = {
    "clickhouse_http": 0, "weed_master": 1, "weed_volume": 2, "weed_filer": 3, "s3": 4,
    "weed_master_grpc": 5, "weed_volume_grpc": 6, "weed_filer_grpc": 7, "s3_grpc": 8,
}
WEED_PORTS = [name for name in PORT_OFFSETS if name != "clickhouse_http"]
PORT_RANGE = (20000, 59999)
PORT_TRIES = 8
READY_TIMEOUT = float(os.environ.get("INPLACE_TESTBED_READY_TIMEOUT", "60"))
STOP_TIMEOUT = float(os.environ.get("INPLACE_TESTBED_STOP_TIMEOUT", "10"))

CH_DATA = os.path.join(STATE, "clickhouse")
WEED_DATA = os.path.join(STATE, "seaweed")
LOGS = os.path.join(STATE, "logs")
RUN = os.path.join(STATE, "run")
PORTS_FILE = os.path.join(STATE, "ports.json")
CREDENTIALS_FILE = os.path.join(STATE, "credentials.json")
IDENTITIES_FILE = os.path.join(STATE, "s3-identities.json")
ENV_FILE = os.path.join(STATE, "env")
CONFIG_FILE = os.path.join(STATE, "config.yml")
# The engine's server config: <macros> fill system.macros, which clickhouse-backup (and inplace)
# substitute into s3.path ({cluster}, {shard}, ...).
CH_CONFIG_FILE = os.path.join(STATE, "clickhouse-config.xml")
MACROS = {"cluster": "testbed", "shard": "01", "replica": "replica-1", "version": "26_9"}
LOCK_FILE = os.path.join(STATE, "lock")


class Fail(Exception):
    pass


def say(message):
    print(f"testbed: {message}", file=sys.stderr, flush=True)


# --- small file helpers -------------------------------------------------------------------------

def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise Fail(f"{path} is damaged ({e}); delete it or run tools/testbed down --purge") from None


def write_private(path, text):
    """Writes atomically with mode 0600; leaves the file alone when it already holds `text`."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text and (os.stat(path).st_mode & 0o777) == 0o600:
                return False
    except FileNotFoundError:
        pass
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return True


def remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def log_tail(path, lines=25):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return "\n".join("    " + line for line in tail)


# --- the server's own user ---------------------------------------------------------------------

def server_account():
    """The pwd entry the ClickHouse server runs as: CH_SYSTEM_USER when we are root (None otherwise:
    then it runs as we do)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(CH_SYSTEM_USER)
    except KeyError:
        raise Fail(f"the system user {CH_SYSTEM_USER} does not exist: run tools/setup (as root) to create it") from None


def runs_as_account(pid):
    """Whether process `pid` runs as the user server_account() names (always, when not root)."""
    account = server_account()
    if account is None:
        return True
    try:
        return os.stat(f"/proc/{pid}").st_uid == account.pw_uid
    except FileNotFoundError:
        return True


def give_tree(root, account):
    """Gives `root` and everything under it to `account` (what earlier runs left as root)."""
    started, given = time.monotonic(), 0
    want = (account.pw_uid, account.pw_gid)
    for folder, dirs, files in os.walk(root):
        for path in [folder] + [os.path.join(folder, name) for name in dirs + files]:
            info = os.lstat(path)
            if (info.st_uid, info.st_gid) != want:
                os.lchown(path, *want)
                given += 1
    if given:
        say(f"gave {given} file(s) and folder(s) under {root} to {account.pw_name} "
            f"({time.monotonic() - started:.1f}s)")


def can_search(info, account, groups):
    if account.pw_uid == info.st_uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def make_searchable(path, account):
    """Grants o+x on each folder above `path` that `account` cannot search (a checkout under a
    0700 folder, such as mktemp -d or /root), saying so."""
    groups = {account.pw_gid} | {g.gr_gid for g in grp.getgrall() if account.pw_name in g.gr_mem}
    folder = os.path.dirname(os.path.abspath(path))
    chain = []
    while True:
        chain.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for folder in reversed(chain):
        info = os.stat(folder)
        if not can_search(info, account, groups):
            os.chmod(folder, stat.S_IMODE(info.st_mode) | stat.S_IXOTH)
            say(f"granted o+x on {folder} (was {stat.S_IMODE(info.st_mode):04o}): the ClickHouse server, "
                f"running as {account.pw_name}, must reach {path}")


# --- ports and credentials ----------------------------------------------------------------------

def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def wait_port_free(port, seconds=5.0):
    """A process just killed may hold its socket a moment longer (its threads exit after the
    leader shows as a zombie)."""
    deadline = time.monotonic() + seconds
    while not port_free(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def ports_from_base(base):
    return {"base": base, **{name: base + offset for name, offset in PORT_OFFSETS.items()}}


def candidate_bases():
    low, high = PORT_RANGE
    slots = (high - low - max(PORT_OFFSETS.values())) // 10
    override = os.environ.get("INPLACE_TESTBED_PORT_BASE")
    if override:
        try:
            first = int(override)
        except ValueError:
            raise Fail(f"INPLACE_TESTBED_PORT_BASE={override!r} is not a port number") from None
        if not 1024 <= first <= 65535 - max(PORT_OFFSETS.values()):
            raise Fail(f"INPLACE_TESTBED_PORT_BASE={first} leaves no room for its {len(PORT_OFFSETS)} ports")
        return [first + 10 * i for i in range(PORT_TRIES) if first + 10 * i + max(PORT_OFFSETS.values()) <= 65535]
    digest = int(hashlib.sha256(STATE.encode("utf-8")).hexdigest(), 16)
    start = digest % slots
    return [low + 10 * ((start + i) % slots) for i in range(PORT_TRIES)]


def choose_ports(running):
    """The recorded ports when they are still usable, else the first free candidate base."""
    recorded = read_json(PORTS_FILE)
    override = os.environ.get("INPLACE_TESTBED_PORT_BASE")
    if recorded and running and override and int(override) != recorded.get("base"):
        raise Fail(f"the test bed runs on port base {recorded['base']}, not INPLACE_TESTBED_PORT_BASE={override}: "
                   "run tools/testbed down first")
    if recorded and set(PORT_OFFSETS) <= set(recorded):
        owned = set()
        if "clickhouse" in running:
            owned.add(recorded["clickhouse_http"])
        if "seaweed" in running:
            owned.update(recorded[name] for name in WEED_PORTS)
        taken = [recorded[n] for n in PORT_OFFSETS if recorded[n] not in owned and not wait_port_free(recorded[n], 2.0)]
        usable = not taken and (not override or int(override) == recorded.get("base"))
        if usable:
            return recorded
        if running:
            raise Fail(f"port(s) {', '.join(map(str, taken))} of the running test bed are taken by another program; "
                       "run tools/testbed down, then up again to choose new ports")
        if taken:
            say(f"recorded port(s) {', '.join(map(str, taken))} are taken by another program: choosing new ports")
    tried = []
    for base in candidate_bases():
        ports = ports_from_base(base)
        if all(port_free(ports[n]) for n in PORT_OFFSETS):
            write_private(PORTS_FILE, json.dumps(ports, indent=2) + "\n")
            return ports
        tried.append(base)
    raise Fail(f"no free ports: port bases {', '.join(map(str, tried))} each have a port in use; "
               "set INPLACE_TESTBED_PORT_BASE to a free range")


def random_text(length, alphabet):
    return "".join(secrets.choice(alphabet) for _ in range(length))


# Characters every generated ClickHouse password holds: clickhouse-backup's own test config has
# `meow=& 123?*%# МЯУ`. Each must survive the env file, config.yml, JSON, the X-ClickHouse-Key header
# (sent as UTF-8 bytes) and basic auth; none of them is a quote or a backslash.
PASSWORD_SPECIALS = "=&?*%# "
PASSWORD_NON_ASCII = "МЯУé"


def password_is_current(password):
    return (all(c in password for c in PASSWORD_SPECIALS + PASSWORD_NON_ASCII)
            and password[0].isascii() and password[0].isalpha() and password[-1].isascii() and password[-1].isalpha())


def new_password():
    letters = string.ascii_letters + string.digits
    chars = [secrets.choice(string.ascii_uppercase), secrets.choice(string.ascii_lowercase), secrets.choice(string.digits)]
    chars += list(PASSWORD_SPECIALS) + list(PASSWORD_NON_ASCII)
    chars += [secrets.choice(letters) for _ in range(14)]
    secrets.SystemRandom().shuffle(chars)
    # Letters at both ends: HTTP strips spaces around a header's value.
    return secrets.choice(string.ascii_letters) + "".join(chars) + secrets.choice(string.ascii_letters)


def credentials():
    """The test bed's credentials, made on the first `up`. A ClickHouse password from before the
    special characters were required is replaced (the running server is then restarted by `up`,
    since it refuses the new one)."""
    creds = read_json(CREDENTIALS_FILE)
    if creds and all(creds.get(k) for k in ("clickhouse_user", "clickhouse_password", "s3_access_key", "s3_secret_key")):
        if password_is_current(creds["clickhouse_password"]):
            return creds
        say("the ClickHouse password in credentials.json lacks the required special characters: making a new one")
        creds["clickhouse_password"] = new_password()
    else:
        letters = string.ascii_letters + string.digits
        creds = {
            "clickhouse_user": CH_USER,
            "clickhouse_password": new_password(),
            "s3_access_key": "INPLACE" + random_text(13, string.ascii_uppercase + string.digits),
            "s3_secret_key": random_text(40, letters),
        }
    write_private(CREDENTIALS_FILE, json.dumps(creds, indent=2, ensure_ascii=False) + "\n")
    return creds


def write_clickhouse_config():
    macros = "".join(f"        <{name}>{value}</{name}>\n" for name, value in MACROS.items())
    write_private(CH_CONFIG_FILE, f"<clickhouse>\n    <macros>\n{macros}    </macros>\n</clickhouse>\n")


# --- processes ----------------------------------------------------------------------------------

def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode("utf-8", errors="replace") for a in f.read().split(b"\0") if a]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def is_zombie(pid):
    """True when the process has exited: gone, or a zombie whose threads have all ended (a killed
    process' leader shows as a zombie while its other threads still hold files and sockets)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                return False
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


class Service:
    def __init__(self, name, title, pid_file, log_file):
        self.name = name
        self.title = title
        self.pid_file = pid_file
        self.log_file = log_file

    def matches(self, args):
        raise NotImplementedError

    def pid(self):
        """The pid of our running process: the pid file's if it still matches, else a /proc scan."""
        recorded = None
        try:
            with open(self.pid_file, encoding="utf-8") as f:
                recorded = int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            pass
        if recorded:
            reap(recorded)
            args = cmdline(recorded)
            if args and self.matches(args) and not is_zombie(recorded):
                return recorded
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != os.getpid():
                args = cmdline(int(entry))
                if args and self.matches(args) and not is_zombie(int(entry)):
                    self.write_pid(int(entry))
                    return int(entry)
        if recorded:
            remove(self.pid_file)
        return None

    def write_pid(self, pid):
        if os.path.isdir(STATE):
            with open(self.pid_file, "w", encoding="utf-8") as f:
                f.write(f"{pid}\n")

    def spawn(self, args, env=None, account=None):
        """Starts `args` in a session of its own; as `account` (a pwd entry) when given."""
        os.makedirs(LOGS, exist_ok=True)
        as_user = {} if account is None else {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        with open(self.log_file, "ab") as log:
            stamp = datetime.datetime.now().isoformat(timespec="seconds")
            who = "" if account is None else f" as {account.pw_name} (uid {account.pw_uid})"
            log.write(f"\n=== {stamp} tools/testbed starts {self.title}{who} ===\n".encode())
            log.flush()
            process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=STATE, env=env, start_new_session=True, close_fds=True, **as_user)
        self.write_pid(process.pid)
        return process

    def signal_group(self, pid, sig):
        """Signals the process group the test bed started (setsid), or the process alone."""
        args = cmdline(pid)
        if not args or is_zombie(pid) or not self.matches(args):
            return False
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            return False
        return True


class ClickHouse(Service):
    def __init__(self):
        super().__init__("clickhouse", "the ClickHouse HTTP server (chdb)",
                         os.path.join(STATE, "clickhouse.pid"), os.path.join(LOGS, "clickhouse.log"))

    def matches(self, args):
        return (any(a.endswith("clickhouse_http_server.py") for a in args)
                and any(a == "--data-path" and i + 1 < len(args) and args[i + 1] == CH_DATA for i, a in enumerate(args)))

    def start(self, ports, creds):
        python = os.path.join(VENV, "bin", "python")
        if not os.access(python, os.X_OK):
            raise Fail(f"{python} is missing: run tools/setup")
        os.makedirs(CH_DATA, exist_ok=True)
        env = dict(os.environ)
        env["INPLACE_CH_SERVER_PASSWORD"] = creds["clickhouse_password"]
        env["PYTHONUNBUFFERED"] = "1"
        write_clickhouse_config()
        args = [python, SERVER_SCRIPT, "--data-path", CH_DATA, "--config-file", CH_CONFIG_FILE, "--host", HOST,
                "--port", str(ports["clickhouse_http"]), "--user", creds["clickhouse_user"]]
        account = server_account()
        if account is None:
            return self.spawn(args, env)
        give_tree(CH_DATA, account)
        # The engine reads its config (macros) as its own user; the file stays private to it.
        os.chown(CH_CONFIG_FILE, account.pw_uid, account.pw_gid)
        for path in (python, os.path.realpath(python), SERVER_SCRIPT, CH_DATA, CH_CONFIG_FILE):
            make_searchable(path, account)
        env["HOME"] = CH_DATA
        env["USER"] = env["LOGNAME"] = account.pw_name
        return self.spawn(args, env, account=account)

    def answers(self, ports, creds, timeout=2.0):
        """None when the server answers /ping and a query with our credentials, else why not."""
        try:
            conn = http.client.HTTPConnection(HOST, ports["clickhouse_http"], timeout=timeout)
            conn.request("GET", "/ping")
            r = conn.getresponse()
            body = r.read()
            if r.status != 200 or body != b"Ok.\n":
                return f"/ping answered {r.status} {body[:100]!r}"
            # The password as UTF-8 bytes, as curl sends it (http.client would encode it as Latin-1).
            conn.request("POST", "/", body=b"SELECT macro, substitution FROM system.macros ORDER BY macro", headers={
                "X-ClickHouse-User": creds["clickhouse_user"],
                "X-ClickHouse-Key": creds["clickhouse_password"].encode("utf-8")})
            r = conn.getresponse()
            body = r.read()
            conn.close()
            if r.status != 200:
                return f"SELECT ... FROM system.macros answered {r.status} {body[:200]!r}"
            expected = "".join(f"{name}\t{value}\n" for name, value in sorted(MACROS.items())).encode()
            if body != expected:
                # Started before the test bed gave the engine its macros: it must be restarted.
                return f"answered {r.status}: system.macros is {body[:200]!r}, not the test bed's macros"
            return None
        except (OSError, http.client.HTTPException) as e:
            return f"{type(e).__name__}: {e}"


class SeaweedFS(Service):
    def __init__(self):
        super().__init__("seaweed", "SeaweedFS (weed server with S3)",
                         os.path.join(STATE, "seaweed.pid"), os.path.join(LOGS, "seaweed.log"))

    def matches(self, args):
        return bool(args) and os.path.basename(args[0]) == "weed" and f"-dir={WEED_DATA}" in args

    def start(self, ports, creds):
        weed = os.path.join(VENV, "bin", "weed")
        if not os.access(weed, os.X_OK):
            raise Fail(f"{weed} is missing: run tools/setup")
        os.makedirs(WEED_DATA, exist_ok=True)
        identities = {"identities": [{
            "name": "inplace",
            "credentials": [{"accessKey": creds["s3_access_key"], "secretKey": creds["s3_secret_key"]}],
            "actions": ["Admin", "Read", "Write", "List"],
        }]}
        write_private(IDENTITIES_FILE, json.dumps(identities, indent=2) + "\n")
        p = ports
        args = [
            weed, "server", f"-dir={WEED_DATA}", f"-ip={HOST}", f"-ip.bind={HOST}",
            f"-master.port={p['weed_master']}", f"-master.port.grpc={p['weed_master_grpc']}",
            f"-volume.port={p['weed_volume']}", f"-volume.port.grpc={p['weed_volume_grpc']}",
            "-filer", f"-filer.port={p['weed_filer']}", f"-filer.port.grpc={p['weed_filer_grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", f"-s3.config={IDENTITIES_FILE}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-volume.preStopSeconds=0",
            # One master: a short election timeout makes a restart with data ready in ~2 s (the
            # default 10s made it ~18 s). Volumes are not preallocated: -volume.max costs nothing
            # until used; each bucket (collection) takes 7 volumes at once.
            "-master.electionTimeout=500ms", "-master.volumeSizeLimitMB=128", "-volume.max=64",
            "-master.telemetry=false",
        ]
        # Unix sockets (the defaults are /tmp/seaweedfs-<what>-<port>.sock): inside the state
        # folder when its path is short enough for a socket address.
        if len(os.path.join(RUN, "filer.sock")) < 100:
            os.makedirs(RUN, exist_ok=True)
            for what in ("filer", "s3"):
                sock = os.path.join(RUN, f"{what}.sock")
                remove(sock)
                args.append(f"-{what}.localSocket={sock}")
        return self.spawn(args)

    def answers(self, ports, creds, timeout=2.0):
        try:
            status, body = s3_request("GET", "/", ports, creds, timeout=timeout)
        except (OSError, http.client.HTTPException) as e:
            return f"{type(e).__name__}: {e}"
        if status != 200:
            return f"signed ListBuckets answered {status} {body[:200]!r}"
        # After a restart S3 answers before the volume server has told the master its volumes:
        # reads would fail with "volume N not found" until then.
        try:
            on_disk = {v["Id"] for v in http_json(ports["weed_volume"], "/status", timeout).get("Volumes") or []}
            known = set()
            for racks in (http_json(ports["weed_master"], "/vol/status", timeout).get("Volumes", {}).get("DataCenters") or {}).values():
                for nodes in (racks or {}).values():
                    for volumes in (nodes or {}).values():
                        known.update(v["Id"] for v in volumes or [])
        except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError, AttributeError) as e:
            return f"volume status: {type(e).__name__}: {e}"
        if not on_disk <= known:
            return f"the master does not know volume(s) {sorted(on_disk - known)} yet"
        return None


def http_json(port, path, timeout):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise ValueError(f"{path} answered {r.status}")
        return json.loads(body)
    finally:
        conn.close()


CLICKHOUSE = ClickHouse()
SEAWEED = SeaweedFS()
SERVICES = [CLICKHOUSE, SEAWEED]


# --- S3 (SigV4 with the standard library) -------------------------------------------------------

def s3_signed(method, path, ports, creds, body=b"", query=None, payload_hash=None):
    """SigV4 for one request to the test bed's S3: returns (url, headers), content-length included.
    payload_hash: the body's SHA-256 (hex) when the caller has it already, or "UNSIGNED-PAYLOAD"."""
    host = f"{HOST}:{ports['s3']}"
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    payload_hash = payload_hash or hashlib.sha256(body).hexdigest()
    canonical_uri = urllib.parse.quote(path, safe="/-_.~")
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted((query or {}).items()))
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed_headers = ";".join(sorted(headers))
    canonical_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
    canonical_request = "\n".join([method, canonical_uri, canonical_query, canonical_headers, signed_headers, payload_hash])
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = ("AWS4" + creds["s3_secret_key"]).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds['s3_access_key']}/{scope}, "
                                f"SignedHeaders={signed_headers}, Signature={signature}")
    headers["content-length"] = str(len(body))
    return canonical_uri + (f"?{canonical_query}" if canonical_query else ""), headers


def s3_request(method, path, ports, creds, body=b"", query=None, timeout=5.0):
    """One SigV4-signed request to the test bed's S3 on a connection of its own; returns (status, body)."""
    url, headers = s3_signed(method, path, ports, creds, body, query)
    conn = http.client.HTTPConnection(HOST, ports["s3"], timeout=timeout)
    try:
        conn.request(method, url, body=body if body else None, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def ensure_bucket(ports, creds, deadline):
    last = ""
    while True:
        try:
            status, body = s3_request("HEAD", f"/{BUCKET}", ports, creds)
            if status == 200:
                return False
            if status == 404:
                status, body = s3_request("PUT", f"/{BUCKET}", ports, creds)
                if status == 200:
                    return True
            last = f"{status} {body[:300]!r}"
        except (OSError, http.client.HTTPException) as e:
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() > deadline:
            raise Fail(f"could not create the bucket {BUCKET}: {last}\n{log_tail(SEAWEED.log_file)}")
        time.sleep(0.2)


# --- env and config files -----------------------------------------------------------------------

def shell_quote(value):
    return "'" + str(value).replace("'", "'\\''") + "'"


def yaml_quote(value):
    return "'" + str(value).replace("'", "''") + "'"


def write_client_files(ports, creds):
    s3_endpoint = f"http://{HOST}:{ports['s3']}"
    env = [
        ("INPLACE_TESTBED_DIR", STATE),
        ("CLICKHOUSE_HOST", HOST),
        ("CLICKHOUSE_HTTP_PORT", ports["clickhouse_http"]),
        ("CLICKHOUSE_USERNAME", creds["clickhouse_user"]),
        ("CLICKHOUSE_PASSWORD", creds["clickhouse_password"]),
        ("CLICKHOUSE_DATA_PATH", CH_DATA + "/"),
        ("S3_ENDPOINT", s3_endpoint),
        ("S3_REGION", REGION),
        ("S3_BUCKET", BUCKET),
        ("S3_ACCESS_KEY", creds["s3_access_key"]),
        ("S3_SECRET_KEY", creds["s3_secret_key"]),
        ("S3_FORCE_PATH_STYLE", "true"),
        ("S3_DISABLE_SSL", "true"),
        ("S3_PATH", S3_PATH),
    ] + [(f"INPLACE_TESTBED_MACRO_{name.upper()}", value) for name, value in MACROS.items()]
    env_text = "# The running test bed (tools/testbed up); removed by tools/testbed down.\n"
    env_text += "".join(f"export {k}={shell_quote(v)}\n" for k, v in env)
    config_text = (
        "# clickhouse-backup's config format, for the running test bed (tools/testbed up).\n"
        "general:\n"
        "  remote_storage: s3\n"
        "  download_concurrency: 4\n"
        "  upload_concurrency: 4\n"
        "  restore_in_place: true\n"
        "clickhouse:\n"
        f"  host: {yaml_quote(HOST)}\n"
        f"  http_port: {ports['clickhouse_http']}\n"
        f"  username: {yaml_quote(creds['clickhouse_user'])}\n"
        f"  password: {yaml_quote(creds['clickhouse_password'])}\n"
        "  timeout: '5m'\n"
        "s3:\n"
        f"  endpoint: {yaml_quote(s3_endpoint)}\n"
        f"  region: {yaml_quote(REGION)}\n"
        f"  bucket: {yaml_quote(BUCKET)}\n"
        f"  path: {yaml_quote(S3_PATH)}\n"
        f"  access_key: {yaml_quote(creds['s3_access_key'])}\n"
        f"  secret_key: {yaml_quote(creds['s3_secret_key'])}\n"
        "  force_path_style: true\n"
        "  disable_ssl: true\n"
        "  compression_format: 'tar'\n"
    )
    write_private(ENV_FILE, env_text)
    write_private(CONFIG_FILE, config_text)


# --- commands -----------------------------------------------------------------------------------

_lock_fd = None


def lock():
    """Serializes tools/testbed commands on one state folder (held until the process exits)."""
    global _lock_fd
    if _lock_fd is not None:
        return _lock_fd
    os.makedirs(STATE, exist_ok=True)
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        say("another tools/testbed command is running on this state folder: waiting for it")
        fcntl.flock(fd, fcntl.LOCK_EX)
    _lock_fd = fd
    return fd


def wait_ready(pending, ports, creds, timeout=READY_TIMEOUT):
    """pending: {service: Popen or None}; waits until each answers, or fails with its log."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    reasons = {}
    while pending:
        for service in list(pending):
            process = pending[service]
            if process is not None and process.poll() is not None:
                raise Fail(f"{service.title} exited with status {process.returncode} while starting; "
                           f"its log ({service.log_file}) ends with:\n{log_tail(service.log_file)}")
            reason = service.answers(ports, creds, timeout=1.0)
            if reason is None:
                say(f"{service.title} answers ({time.monotonic() - started:.1f}s)")
                del pending[service]
            else:
                reasons[service] = reason
        if not pending:
            break
        if time.monotonic() > deadline:
            service = next(iter(pending))
            raise Fail(f"{service.title} did not answer within {timeout:.0f}s (last: {reasons.get(service)}); "
                       f"its log ({service.log_file}) ends with:\n{log_tail(service.log_file)}")
        time.sleep(0.1)


def cmd_up(_args):
    started = time.monotonic()
    lock()
    running = {s.name: s.pid() for s in SERVICES}
    running = {name: pid for name, pid in running.items() if pid}
    ports = choose_ports(running)
    creds = credentials()
    pending = {}
    for service in SERVICES:
        if service is CLICKHOUSE and service.name in running and not runs_as_account(running[service.name]):
            # Started as another user (by an older tools/testbed): started anew as its own user.
            say(f"{service.title} runs (pid {running[service.name]}) as another user than {CH_SYSTEM_USER}; restarting it")
            stop([service])
            del running[service.name]
        if service.name in running:
            reason = service.answers(ports, creds)
            if reason is None:
                continue
            # Running but not answering as ours should: still starting, or hung, or started
            # with other ports or credentials. Give it a moment, then start it anew.
            say(f"{service.title} runs (pid {running[service.name]}) but does not answer ({reason})")
            try:
                if "answered 403" in reason:
                    raise Fail("it refuses our credentials")
                if "not the test bed's macros" in reason:
                    raise Fail("it was started without the test bed's macros")
                wait_ready({service: None}, ports, creds, timeout=10)
                continue
            except Fail as e:
                say(f"{service.title}: {e}; restarting it")
                stop([service])
        if os.path.exists(service.pid_file):
            remove(service.pid_file)
        say(f"starting {service.title} (log: {service.log_file})")
        pending[service] = service.start(ports, creds)
    verb = "started" if pending else "already up"
    if pending:
        wait_ready(pending, ports, creds)
    if ensure_bucket(ports, creds, time.monotonic() + READY_TIMEOUT):
        say(f"created the bucket {BUCKET}")
    write_client_files(ports, creds)
    say(f"{verb} in {time.monotonic() - started:.1f}s: ClickHouse http://{HOST}:{ports['clickhouse_http']}, "
        f"S3 http://{HOST}:{ports['s3']} bucket {BUCKET}; settings in {ENV_FILE} and {CONFIG_FILE}")
    return 0


def stop(services, sig_first=signal.SIGTERM, grace=STOP_TIMEOUT):
    """Signals each running service's process group, waits, SIGKILLs what is left."""
    pids = {}
    for service in services:
        pid = service.pid()
        if pid and service.signal_group(pid, sig_first):
            pids[service] = pid
            say(f"stopping {service.title} (pid {pid}, {signal.Signals(sig_first).name})")
        else:
            say(f"{service.title} is not running")
        remove(service.pid_file)
    deadline = time.monotonic() + grace
    killed = set()
    while pids:
        for service, pid in list(pids.items()):
            reap(pid)
            args = cmdline(pid)
            if not args or is_zombie(pid) or not service.matches(args):
                del pids[service]
                continue
            if time.monotonic() > deadline and service not in killed:
                say(f"{service.title} still runs after {grace:.0f}s: SIGKILL")
                service.signal_group(pid, signal.SIGKILL)
                killed.add(service)
        if pids and time.monotonic() > deadline + 10:
            raise Fail("could not stop: " + ", ".join(f"{s.title} (pid {p})" for s, p in pids.items()))
        if pids:
            time.sleep(0.1)


def cmd_down(args):
    if not os.path.isdir(STATE):
        # Nothing recorded; still stop processes of ours that a /proc scan finds (by data path).
        stop(SERVICES)
        return 0
    lock()
    stop(SERVICES)
    # The env and config files describe a running test bed (tests look for the env file).
    remove(ENV_FILE)
    remove(CONFIG_FILE)
    remove_weed_sockets()
    if args.purge:
        for path in (CH_DATA, WEED_DATA, LOGS, RUN):
            shutil.rmtree(path, ignore_errors=True)
        for path in (PORTS_FILE, CREDENTIALS_FILE, IDENTITIES_FILE):
            remove(path)
        remove(LOCK_FILE)
        try:
            os.rmdir(STATE)
        except OSError:
            pass
        say(f"purged the test bed's data in {STATE}")
    else:
        say(f"down; data kept in {STATE} (down --purge deletes it)")
    return 0


def remove_weed_sockets():
    """weed puts its gRPC Unix sockets in /tmp, named by our ports; they outlive a SIGKILL."""
    ports = read_json(PORTS_FILE) or {}
    for what, name in (("master", "weed_master_grpc"), ("volume", "weed_volume_grpc"),
                       ("filer", "weed_filer_grpc"), ("s3", "s3_grpc")):
        if name in ports:
            path = f"/tmp/seaweedfs-{what}-grpc-{ports[name]}.sock"
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    os.remove(path)
            except FileNotFoundError:
                pass


def cmd_status(_args):
    ports = read_json(PORTS_FILE)
    creds = read_json(CREDENTIALS_FILE)
    print(f"state: {STATE}")
    if not ports or not creds:
        print("not set up (run tools/testbed up)")
        return 1
    healthy = True
    for service in SERVICES:
        pid = service.pid()
        reason = service.answers(ports, creds) if pid else "not running"
        state = f"running (pid {pid}) and answering" if pid and reason is None else (
            f"running (pid {pid}) but not answering: {reason}" if pid else "not running")
        if service is CLICKHOUSE:
            where = f"http://{HOST}:{ports['clickhouse_http']} (data {CH_DATA})"
        else:
            where = (f"S3 http://{HOST}:{ports['s3']} bucket {BUCKET}; master {ports['weed_master']}, "
                     f"volume {ports['weed_volume']}, filer {ports['weed_filer']}, "
                     f"gRPC {ports['weed_master_grpc']}-{ports['s3_grpc']} (data {WEED_DATA})")
        print(f"{service.name}: {state}: {where}")
        healthy = healthy and pid is not None and reason is None
    print(f"env: {ENV_FILE}" + ("" if os.path.exists(ENV_FILE) else " (absent)"))
    return 0 if healthy else 1


def recorded_setup():
    ports = read_json(PORTS_FILE)
    creds = read_json(CREDENTIALS_FILE)
    if not ports or not creds:
        raise Fail("the test bed was never started here: run tools/testbed up")
    return ports, creds


def cmd_kill_clickhouse(_args):
    lock()
    stop([CLICKHOUSE], sig_first=signal.SIGKILL, grace=5)
    return 0


def cmd_start_clickhouse(_args):
    lock()
    ports, creds = recorded_setup()
    pid = CLICKHOUSE.pid()
    if pid and CLICKHOUSE.answers(ports, creds) is None:
        say(f"{CLICKHOUSE.title} already runs (pid {pid})")
        return 0
    if pid:
        wait_ready({CLICKHOUSE: None}, ports, creds)
        return 0
    if not wait_port_free(ports["clickhouse_http"]):
        raise Fail(f"port {ports['clickhouse_http']} is taken by another program")
    say(f"starting {CLICKHOUSE.title} on port {ports['clickhouse_http']}")
    wait_ready({CLICKHOUSE: CLICKHOUSE.start(ports, creds)}, ports, creds)
    return 0


def cmd_restart_clickhouse(args):
    lock()
    recorded_setup()
    stop([CLICKHOUSE], sig_first=signal.SIGKILL, grace=5)
    return cmd_start_clickhouse(args)


def main():
    parser = argparse.ArgumentParser(prog="tools/testbed", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the test bed (a no-op when it is up)")
    down = sub.add_parser("down", help="stop the test bed")
    down.add_argument("--purge", action="store_true", help="also delete its data, logs, ports and credentials")
    sub.add_parser("status", help="what runs; exit status 0 only when all answers")
    sub.add_parser("restart-clickhouse", help="SIGKILL the ClickHouse server and start it again")
    sub.add_parser("kill-clickhouse", help="SIGKILL the ClickHouse server")
    sub.add_parser("start-clickhouse", help="start the ClickHouse server if it is not running")
    args = parser.parse_args()
    commands = {
        "up": cmd_up, "down": cmd_down, "status": cmd_status,
        "restart-clickhouse": cmd_restart_clickhouse, "kill-clickhouse": cmd_kill_clickhouse,
        "start-clickhouse": cmd_start_clickhouse,
    }
    try:
        return commands[args.command](args)
    except Fail as e:
        say(f"error: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
