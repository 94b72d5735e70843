"""A real, throwaway PostgreSQL server for the tests (Debian's ``postgresql`` package).

``postgres_server`` (one per test session) runs ``initdb`` into a fresh temporary folder, starts the
server with ``pg_ctl`` on 127.0.0.1 (a free port; its Unix socket in that folder too), and at the end
stops it (``pg_ctl stop -m immediate``) and deletes the folder. ``postgres_url`` gives each test its
own new, empty database as a ``postgresql+psycopg://`` SQLAlchemy URL, dropped after the test.

``initdb`` and ``postgres`` refuse to run as root: as root (here and in CI) they run as the
``postgres`` system user that Debian's package creates, owning the temporary folder. The tests are
skipped, saying why, only where the server binaries are not installed (``make system-deps``).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_USER = "postgres"  # the cluster's superuser, and the system user the server runs as under root
NOT_INSTALLED = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin; "
    "install Debian's postgresql package (make system-deps)"
)


def find_pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: from PATH, else Debian's /usr/lib/postgresql/<ver>/bin
    (not on PATH), the highest version first. Symlinks are resolved so pg_ctl finds its postgres."""
    candidates = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)

    def version(folder: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(folder).parent.name)) or (0,)

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    bin_dir: Path
    folder: Path  # temporary: data/, the socket and server.log
    port: int
    run_as: pwd.struct_passwd | None  # the system user the binaries run as (when we are root)
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a server binary (as the postgres user when we are root); its output in the error."""
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as.pw_name, "--", *command]
        done = subprocess.run(
            command, cwd=self.folder, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}{done.stderr}\n{log}"
            )
        return done

    def start(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", PG_USER, "-A", "trust", "-E", "UTF8", "--no-locale")
        options = (
            f"-p {self.port} -k {shlex.quote(str(self.folder))} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self.run(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "60")

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=PG_USER, dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(sql)

    def create_database(self) -> str:
        name = f"test_{next(self._numbers)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # ends the test's pooled connections


def start_postgres() -> PostgresServer:
    """Start a throwaway cluster (the caller stops it and removes ``server.folder``)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip(NOT_INSTALLED)
    run_as = None
    if os.geteuid() == 0:
        try:
            run_as = pwd.getpwnam(PG_USER)
        except KeyError:
            raise RuntimeError(
                f"running as root, and initdb/postgres refuse to run as root, but there is no "
                f"{PG_USER!r} system user to run them as (Debian's postgresql package creates it)"
            ) from None
    # not under pytest's tmp folder: that one is private to root (0700), the postgres user cannot enter it
    folder = Path(tempfile.mkdtemp(prefix="playground-pg-"))
    if run_as is not None:
        os.chown(folder, run_as.pw_uid, run_as.pw_gid)
    server = PostgresServer(bin_dir=bin_dir, folder=folder, port=_free_port(), run_as=run_as)
    try:
        server.start()
    except BaseException:
        try:
            server.stop()  # pg_ctl may have started a server that then failed to answer in time
        except Exception:  # noqa: BLE001 - the start's own error is the one to report
            pass
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server():
    server = start_postgres()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A new, empty database for this test only, as a SQLAlchemy URL."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)
