"""A PostgreSQL cluster of a test's own: `initdb` into a temporary folder, its server on a
free loopback port, stopped and started with `pg_ctl` (as the `postgres` user when the suite
runs as root: initdb refuses root), and at the end stopped by its postmaster's process id."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from todoscale.deploy.probes import free_port_run

DATABASE = "todoscale"


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl: TODOSCALE_PG_BIN, else PostgreSQL 15's, else the
    newest under /usr/lib/postgresql; None when there are none."""
    named = os.environ.get("TODOSCALE_PG_BIN")
    found = [named] if named else []
    found += ["/usr/lib/postgresql/15/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"))[::-1]]
    for folder in found:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


class Cluster:
    """One cluster: `init()`, `start()`, `stop()` (fast), `start()` again, `destroy()`."""

    def __init__(self, bin_folder: Path) -> None:
        self.bin = bin_folder
        self.folder = Path(tempfile.mkdtemp(prefix="todoscale-pg-"))
        self.data = self.folder / "data"
        self.port = free_port_run(1)
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        argv = [str(self.bin / tool), *args]
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        assert done.returncode == 0, f"{tool} failed: {done.stdout}{done.stderr}{self.log()}"

    def init(self) -> None:
        """initdb (trust on loopback, no fsync of its files), then the server and a database."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip
        self.start()
        server = self.url.rsplit("/", 1)[0]
        admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
        finally:
            admin.dispose()

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                  "-l", str(self.folder / "server.log"), "-o", options)  # fmt: skip

    def stop(self) -> None:
        """`pg_ctl stop -m fast`: sessions ended, transactions rolled back, a checkpoint."""
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", str(self.data))

    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def destroy(self) -> None:
        """Stop the postmaster by its process id (SIGQUIT, then SIGKILL), remove the folder."""
        pid = self.pid()
        if pid is not None:
            for sig, grace in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                    time.sleep(0.05)
        shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""
