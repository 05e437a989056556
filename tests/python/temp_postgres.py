"""A throwaway PostgreSQL server for the tests and the benchmarks: Debian's server binaries, a cluster
made by initdb in a temporary directory, listening on a Unix socket only, stopped and deleted after.

    with TempPostgres() as pg:              # initdb + pg_ctl start (about 2 s)
        pg.create_database("shop")
        env = {**os.environ, **pg.env("shop")}   # PGHOST/PGPORT/PGUSER/PGDATABASE for libpq clients
        pg.query("shop", "SELECT 1")       # through psql: rows as lists of strings

The binaries come from /usr/lib/postgresql/<version>/bin (the newest; MANYGIL_PG_BIN overrides): the
`postgresql` Debian package, which tools/bootstrap.sh installs. initdb refuses to run as root, so as
root the cluster belongs to the `postgres` system user (the Debian package creates it; `nobody`
otherwise), and the directory is handed over to it. Authentication is `trust` (only this machine's
users can reach the socket, and the cluster lives for one test run); the superuser is `postgres`.

Used by tests/python/test_serve_postgres.py and bench/serve_postgres.py; no dependency beyond the
standard library (psql answers `query`).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

BOOTSTRAP_HINT = ("run `make bootstrap` (tools/bootstrap.sh installs Debian's postgresql), or "
                  "`apt-get install postgresql`")


def tool_env() -> dict[str, str]:
    """The environment for PostgreSQL's programs: ours without LD_PRELOAD (`make sanitize` preloads the
    sanitizer runtimes into Python; postgres, initdb and psql are not built for them) and without
    libpq's PG* variables (each call names its socket, user and database)."""
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("PG")}


class PostgresMissing(RuntimeError):
    """PostgreSQL's server binaries are not installed."""


def server_bin() -> Path:
    """The directory with initdb, pg_ctl and postgres: MANYGIL_PG_BIN, else the newest
    /usr/lib/postgresql/<version>/bin."""
    if os.environ.get("MANYGIL_PG_BIN"):
        found = [os.environ["MANYGIL_PG_BIN"]]
    else:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                       if Path(p).parent.name.isdigit() else 0)
    for d in reversed(found):
        if all(os.access(os.path.join(d, exe), os.X_OK) for exe in ("initdb", "pg_ctl", "postgres", "psql")):
            return Path(d)
    raise PostgresMissing(f"PostgreSQL's server binaries (initdb, pg_ctl, postgres, psql) are not in "
                          f"{found[0] if found else '/usr/lib/postgresql/*/bin'}: {BOOTSTRAP_HINT}")


class TempPostgres:
    """One PostgreSQL cluster in a temporary directory, on a Unix socket (no TCP).

    `settings`: extra postgresql.conf lines (name -> value), e.g. {"max_connections": 200}.
    `durable=False` (the tests) turns fsync and synchronous_commit off: faster, and a crash of the
    machine would lose the cluster, which is thrown away anyway. Not thread-safe; start/stop once.
    """

    SUPERUSER = "postgres"

    def __init__(self, *, settings: dict[str, object] | None = None, durable: bool = True) -> None:
        self.bin = server_bin()
        self.settings = dict(settings or {})
        if not durable:
            self.settings.setdefault("fsync", "off")
            self.settings.setdefault("synchronous_commit", "off")
            self.settings.setdefault("full_page_writes", "off")
        self.port = 5432  # the socket's name (.s.PGSQL.5432) in a directory of our own: no clash
        self.dir: Path | None = None
        self._started = False

    # ---- lifecycle ------------------------------------------------------------------------------------

    def _as_owner(self, cmd: list[str]) -> list[str]:
        """`cmd` run as the cluster's owner: ourselves, or as root the postgres (else nobody) user."""
        if os.geteuid() != 0:
            return cmd
        return ["runuser", "-u", self._owner().pw_name, "--", *cmd]

    @staticmethod
    def _owner() -> pwd.struct_passwd:
        for name in ("postgres", "nobody"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists for initdb")

    def _run(self, cmd: list[str], what: str) -> None:
        r = subprocess.run(self._as_owner(cmd), capture_output=True, text=True, cwd=self.dir, env=tool_env())
        if r.returncode != 0:
            log = self.log_tail()
            raise RuntimeError(f"{what} failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}"
                               + (f"\nserver log:\n{log}" if log else ""))

    def start(self) -> "TempPostgres":
        # A short path: a Unix socket's path is limited to 107 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="manygil-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
        try:
            if os.geteuid() == 0:
                owner = self._owner()
                os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.dir.chmod(0o700)
            data = self.dir / "data"
            self._run([str(self.bin / "initdb"), "-D", str(data), "-U", self.SUPERUSER, "--auth=trust",
                       "--encoding=UTF8", "--locale=C", "--no-sync"], "initdb")
            conf = {"listen_addresses": "''", "unix_socket_directories": f"'{self.dir}'", "port": self.port,
                    **{k: (f"'{v}'" if isinstance(v, str) and not v.replace('.', '').isalnum() else v)
                       for k, v in self.settings.items()}}
            with open(data / "postgresql.conf", "a") as f:  # owned by the cluster's owner; we are root or it
                f.write("".join(f"{k} = {v}\n" for k, v in conf.items()))
            self._run([str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "server.log"), "-w",
                       "-t", "60", "start"], "pg_ctl start")
            self._started = True
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Fast shutdown (open sessions are ended), then the directory is deleted. Idempotent."""
        if self.dir is None:
            return
        try:
            if self._started:
                self._run([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "-t", "60",
                           "stop"], "pg_ctl stop")
        finally:
            self._started = False
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "TempPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.dir / "server.log").read_text().splitlines()[-lines:])
        except (OSError, TypeError):
            return ""

    # ---- clients --------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """libpq's host for the socket: its directory."""
        assert self.dir is not None, "not started"
        return str(self.dir)

    def env(self, dbname: str = "postgres") -> dict[str, str]:
        """libpq's environment variables for `dbname` (psycopg, psql, Django and SQLAlchemy read them)."""
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.SUPERUSER, "PGDATABASE": dbname}

    def sqlalchemy_url(self, dbname: str, driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://{self.SUPERUSER}@/{dbname}?host={self.host}&port={self.port}"

    def query(self, dbname: str, sql: str) -> list[list[str]]:
        """Runs `sql` through psql; the rows as lists of strings ('' for NULL)."""
        r = subprocess.run([str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                            "-h", self.host, "-p", str(self.port), "-U", self.SUPERUSER, "-d", dbname, "-c", sql],
                           capture_output=True, text=True, env=tool_env())
        if r.returncode != 0:
            raise RuntimeError(f"psql: {r.stderr.strip()}")
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def create_database(self, dbname: str) -> None:
        self.query("postgres", f'CREATE DATABASE "{dbname}"')

    def connections(self, dbname: str) -> int:
        """Client sessions connected to `dbname` now, not counting the one asking."""
        return int(self.query(dbname, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND pid <> pg_backend_pid()")[0][0])
