"""A throw-away PostgreSQL server for the tests (no system service): a cluster made by initdb in a
temp dir, one superuser `biosig` with a random password (scram-sha-256), listening only on 127.0.0.1
on a free port, its unix socket in the temp dir; fsync off, small buffers.

    with Server() as pg:                       # initdb + start; stop and rm -r at the end, even on failure
        url = pg.fresh_url()                   # postgresql://biosig:PASSWORD@127.0.0.1:PORT/t_<hex>, a new database
        pg.stop()                              # fast shutdown: the database goes away (connections refused)
        pg.start()                             # back, same port, same data

The binaries are found on PATH or in the highest /usr/lib/postgresql/*/bin (Debian's `postgresql`,
which .ci/run installs). initdb refuses to run as root: as root, the server runs as the `postgres`
system user (runuser, else setpriv). Anything missing raises Unavailable, with a one-line reason.
The URLs need SQLAlchemy >= 2.1 with psycopg 3 (`postgresql://` means psycopg 3 from 2.1 on), as
the `optuna` extra installs.
"""
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid

USER = "biosig"
BINARIES = ("initdb", "pg_ctl", "postgres")


class Unavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message is one line saying why."""


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now (also a closed port to test against)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_binaries():
    """{name: path} of initdb, pg_ctl and postgres, from one directory: initdb's on PATH, else the
    highest version in /usr/lib/postgresql/*/bin. Raises Unavailable."""
    dirs = []
    on_path = shutil.which("initdb")
    if on_path:
        dirs.append(os.path.dirname(os.path.realpath(on_path)))

    def version(d):
        return tuple(int(p) for p in os.path.basename(os.path.dirname(d)).split(".") if p.isdigit())
    dirs += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    for d in dirs:
        paths = {name: os.path.join(d, name) for name in BINARIES}
        if all(os.access(p, os.X_OK) for p in paths.values()):
            return paths
    raise Unavailable("no initdb, pg_ctl and postgres on PATH or in /usr/lib/postgresql/*/bin "
                      "(Debian: apt-get install postgresql)")


def as_server_user():
    """(argv prefix, uid, gid) that runs the server binaries: nothing for a normal user; as root,
    runuser (or setpriv) to the `postgres` system user, since initdb refuses root. Raises Unavailable."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("running as root and there is no `postgres` user to run the server as") from None
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--"], user.pw_uid, user.pw_gid
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups"], \
            user.pw_uid, user.pw_gid
    raise Unavailable("running as root and neither runuser nor setpriv to run the server as `postgres`")


class Server:
    """One throw-away cluster: Server() runs initdb and start(); close() (or the with block's end)
    stops it and removes its temp dir. Attributes: host ('127.0.0.1'), port, user ('biosig'),
    password (random, per server), dir (the temp dir: data/, server.log, the socket)."""

    def __init__(self, start=True):
        self.host, self.user, self.password = "127.0.0.1", USER, secrets.token_hex(16)
        self.bin = find_binaries()
        self.prefix, uid, gid = as_server_user()
        self.dir = tempfile.mkdtemp(prefix="biosig-pg-")
        self.data, self.log = os.path.join(self.dir, "data"), os.path.join(self.dir, "server.log")
        self.port, self.running = None, False
        try:
            os.chown(self.dir, uid, gid)       # the server user owns the cluster, its log and its socket
            self._initdb()
            if start:
                self.start()
        except BaseException:
            self.close()
            raise

    def _run(self, *argv, timeout=60):
        """A server binary as the server user, in the temp dir (as `postgres`, root's cwd may be
        unreadable) -> CompletedProcess; raises Unavailable with its last line if it fails."""
        env = dict(os.environ, LC_ALL="C", LANG="C")
        try:
            proc = subprocess.run([*self.prefix, *argv], cwd=self.dir, env=env, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Unavailable(f"{os.path.basename(argv[0])} took over {timeout} s") from None
        if proc.returncode != 0:
            said = (proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}")
            raise Unavailable(f"{os.path.basename(argv[0])} failed: {said.splitlines()[-1]}")
        return proc

    def _initdb(self):
        pwfile = os.path.join(self.dir, "pwfile")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        os.chown(pwfile, os.stat(self.dir).st_uid, os.stat(self.dir).st_gid)
        try:
            self._run(self.bin["initdb"], "-D", self.data, "-U", self.user, f"--pwfile={pwfile}",
                      "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8",
                      "--locale=C", "--no-sync")
        finally:
            os.remove(pwfile)

    def _configure(self):
        """The port (a free one, new at each first start or retry) and the settings that keep it local
        and quick: a throw-away cluster needs no durability."""
        self.port = free_port()
        with open(os.path.join(self.data, "postgresql.auto.conf"), "w") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "shared_buffers = 16MB\nmax_connections = 100\n")

    def start(self, attempts=3):
        """Start the server (pg_ctl start -w) and wait until it accepts connections. The first start
        picks a free port, retried on another if someone took it meanwhile; later starts keep it."""
        for attempt in range(attempts):
            if self.port is None or attempt:
                self._configure()
            try:
                self._run(self.bin["pg_ctl"], "-D", self.data, "-l", self.log, "-w", "-t", "60", "start",
                          timeout=90)
                self.running = True
                return self
            except Unavailable as failed:
                last = failed
        raise Unavailable(f"{last}; server.log: {self._log_tail()}")

    def _log_tail(self):
        try:
            with open(self.log) as f:
                lines = [line.strip() for line in f if line.strip()]
            return lines[-1] if lines else "(empty)"
        except OSError:
            return "(none)"

    def stop(self, mode="fast"):
        """Stop the server (pg_ctl stop -m fast: open connections are cut, as when a database goes
        away); connections are then refused until start()."""
        if self.running:
            self._run(self.bin["pg_ctl"], "-D", self.data, "-m", mode, "-w", "stop")
            self.running = False

    def url(self, dbname="postgres"):
        """postgresql://biosig:PASSWORD@127.0.0.1:PORT/dbname, the database created if missing."""
        import psycopg
        from psycopg import sql
        with psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                             dbname="postgres", autocommit=True, connect_timeout=10) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def fresh_url(self, prefix="t"):
        """url() of a new, empty database (PREFIX_<hex>): one per test, so tests sharing the session's
        server never see each other's tables or studies."""
        return self.url(f"{prefix}_{uuid.uuid4().hex[:12]}")

    def close(self):
        """Stop the server (immediate: nothing to keep) and remove the temp dir; safe to call twice."""
        try:
            self.stop(mode="immediate")
        except Unavailable:
            self._kill()
        finally:
            self.running = False
            shutil.rmtree(self.dir, ignore_errors=True)

    def _kill(self):
        """SIGQUIT to the postmaster (immediate shutdown) when pg_ctl could not stop it."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                os.kill(int(f.readline()), signal.SIGQUIT)
        except (OSError, ValueError):
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
