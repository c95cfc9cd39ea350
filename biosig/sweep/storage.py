"""Where an Optuna study lives: OUT/optuna.db for one machine (the default), or --storage, shared
by workers on many machines:

    postgresql://USER[:PASSWORD]@HOST[:PORT]/DB    (driver: psycopg[binary]; password also from
                                                   PGPASSWORD or ~/.pgpass, as libpq reads them)
    mysql://USER[:PASSWORD]@HOST[:PORT]/DB         (driver: PyMySQL; password also from MYSQL_PWD)
    sqlite:///PATH                                 (one machine only: SQLite locks badly over NFS;
                                                   sqlite:////abs/path.db for an absolute path)
    journal:PATH                                   (Optuna's journal file, for a shared filesystem
                                                   without a database server)

The password never leaves this module in text: `shown` is the URL with it replaced by ***, and
every message about the storage is passed through hide(). optuna and the database driver are
imported only when a study is opened.
"""
import os
import random
import time
import urllib.parse
from dataclasses import dataclass, field

from ..errors import UserError, needs

CONNECT_TIMEOUT_S = 5          # a server that does not answer is an error within seconds, not a hang
RDB_SCHEMES = ("postgresql", "mysql", "sqlite")
FORMS = "postgresql://USER@HOST/DB, mysql://USER@HOST/DB, sqlite:///PATH or journal:PATH"


@dataclass(frozen=True)
class Storage:
    """A study's storage as --storage gives it. url: as given (may hold a password: never
    print or write it); shown: the same with the password as ***; kind: 'rdb' | 'journal' |
    'local' (OUT/optuna.db); study: the study's name."""
    url: str = field(repr=False)
    shown: str
    kind: str
    study: str
    password: str = field(default="", repr=False)

    @property
    def shared(self):
        """Whether other workers may run the same study (so liveness, not a lock, tells who is gone)."""
        return self.kind != "local"

    def hide(self, text):
        """`text` with the password (and the full URL) replaced: for every message and file."""
        text = str(text).replace(self.url, self.shown)
        return text.replace(self.password, "***") if self.password else text


def local(out, name="sweep"):
    """The default: OUT/optuna.db, one sweep at a time (OUT/.lock is held exclusively)."""
    url = "sqlite:///" + os.path.join(out, "optuna.db")
    return Storage(url=url, shown=url, kind="local", study=name)


def parse(text, out, study_name=None):
    """--storage TEXT -> Storage; the study is named --study-name, else after OUT's last component."""
    name = study_name or os.path.basename(os.path.normpath(out))
    if text.startswith("journal:"):
        path = os.path.abspath(os.path.expanduser(text[len("journal:"):]))
        if not text[len("journal:"):]:
            raise UserError(f"--storage {text}: give the journal file, e.g. journal:/shared/sweeps/study.log")
        return Storage(url="journal:" + path, shown="journal:" + path, kind="journal", study=name)
    parts = urllib.parse.urlsplit(text)
    scheme = parts.scheme.split("+")[0]
    if scheme not in RDB_SCHEMES or not parts.netloc and scheme != "sqlite":
        raise UserError(f"--storage {_without_password(text)[0]}: expected {FORMS}")
    shown, password = _without_password(text)
    try:
        parts.port
    except ValueError:
        raise UserError(f"--storage {shown}: the port is not a number") from None
    return Storage(url=text, shown=shown, kind="rdb", study=name, password=password)


def _without_password(text):
    """(the URL with its password as ***, the password or '')."""
    parts = urllib.parse.urlsplit(text)
    if parts.password is None:
        return text, ""
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), urllib.parse.unquote(parts.password)


def hidden_argv(argv, storage):
    """A command line with its --storage value shown without the password (for sweep.json)."""
    return [token.replace(storage.url, storage.shown) for token in argv]


def without_password(storage):
    """The URL a job script may hold: no password (the job takes it from its environment)."""
    parts = urllib.parse.urlsplit(storage.url)
    if storage.kind != "rdb" or parts.password is None:
        return storage.url
    netloc = parts.netloc.replace(":" + parts.password + "@", "@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _connect_args(url):
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme.startswith("postgresql"):
        return {"connect_timeout": CONNECT_TIMEOUT_S}
    if scheme.startswith("mysql"):
        args = {"connect_timeout": CONNECT_TIMEOUT_S}
        if urllib.parse.urlsplit(url).password is None and os.environ.get("MYSQL_PWD"):
            args["password"] = os.environ["MYSQL_PWD"]
        return args
    return {}


PACKAGES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "pymysql": "PyMySQL",
            "MySQLdb": "mysqlclient"}


def _engine_url(url):
    """SQLAlchemy's plain mysql:// means mysqlclient (compiled); PyMySQL is taken when only it is there."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme != "mysql":
        return url
    import importlib.util
    if importlib.util.find_spec("MySQLdb") is None and importlib.util.find_spec("pymysql") is not None:
        return "mysql+pymysql" + url[len(scheme):]
    return url


def open_storage(storage, optuna, heartbeat_s=None, retry=None):
    """The Optuna storage object. heartbeat_s: workers record a heartbeat this often and a
    running trial whose heartbeat stops for twice as long is failed, and `retry` (Optuna's
    stale-trial callback) queues it again (RDB storages do this themselves; a journal's
    liveness is biosig.sweep.workers'). A storage that cannot be reached is one UserError."""
    try:
        if storage.kind == "journal":
            folder = os.path.dirname(storage.url[len("journal:"):])
            if not os.path.isdir(folder):
                raise UserError(f"--storage {storage.shown}: directory {folder} does not exist")
            journal = optuna.storages.journal
            return optuna.storages.JournalStorage(journal.JournalFileBackend(storage.url[len("journal:"):]))
        url = _engine_url(storage.url)
        kwargs = {"engine_kwargs": {"connect_args": _connect_args(url)}}
        if heartbeat_s and storage.kind == "rdb":
            stale = ("heartbeat_stale_trial_callback" if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback")
                     else "failed_trial_callback")        # optuna < 4.9
            kwargs.update(heartbeat_interval=int(heartbeat_s), grace_period=2 * int(heartbeat_s), **{stale: retry})
        return _rdb(optuna, url, kwargs)
    except UserError:
        raise
    except ImportError as e:        # the database driver SQLAlchemy wants for this URL (Optuna may rewrap it)
        scheme = urllib.parse.urlsplit(storage.url).scheme.split("+")[0]
        package = PACKAGES.get(e.name) or {"postgresql": PACKAGES["psycopg"], "mysql": PACKAGES["pymysql"]}.get(scheme)
        if package is None or e.name not in PACKAGES and "DB access module" not in str(e):
            raise
        raise needs(f"--storage {scheme}://", package) from None
    except Exception as e:       # noqa: BLE001 -- the driver's and SQLAlchemy's errors, which vary
        if not is_storage_error(e, storage):
            raise
        raise unreachable(storage, e) from None


def _rdb(optuna, url, kwargs, attempts=5):
    """RDBStorage(url): workers started at once on a new database race to create Optuna's tables
    (one sees a duplicate key or an existing table); the losers try again a moment later."""
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except Exception as e:      # noqa: BLE001 -- IntegrityError or ProgrammingError, by driver
            racing = type(e).__name__ in ("IntegrityError", "ProgrammingError", "UniqueViolation", "DuplicateTable")
            if not racing or attempt == attempts - 1:
                raise
            time.sleep(0.2 + random.random())


def is_storage_error(e, storage):
    """Whether `e` says the storage failed (a server gone, a refused login, the journal file that
    cannot be written), as opposed to a bug."""
    names = {cls.__module__.split(".")[0] for cls in type(e).__mro__}
    if names & {"sqlalchemy", "psycopg2", "psycopg", "pymysql", "MySQLdb"} or type(e).__name__ == "StorageInternalError":
        return True
    journal = storage.url[len("journal:"):] if storage.kind == "journal" else None
    return isinstance(e, OSError) and journal is not None and str(getattr(e, "filename", "")).startswith(journal)


def reason(storage, e):
    """The error's one useful line (the driver's own, under SQLAlchemy's and Optuna's wrapping)."""
    while getattr(e, "orig", None) is not None or e.__cause__ is not None:
        e = getattr(e, "orig", None) or e.__cause__
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return storage.hide(lines[0] if lines else type(e).__name__)


def unreachable(storage, e):
    why = reason(storage, e)
    if "password" in why and storage.url.startswith("postgresql"):
        why += "; give it in PGPASSWORD or ~/.pgpass (or the URL)"
    elif "unable to open database file" in why:
        why += "; sqlite:///name.db is relative to here, sqlite:////abs/path.db absolute"
    return UserError(f"--storage {storage.shown}: cannot open the study ({why})")


def lost(storage, e):
    return UserError(f"--storage {storage.shown}: the study's storage stopped answering ({reason(storage, e)}); "
                     f"the running trials were stopped (those that saved an epoch continue from their last.pt): "
                     f"run the same command to resume once it is back")
