"""Files that hold personal data or secrets are private to the user Roster runs as (SPEC §14): the SQLite
database (with its -wal and -shm files, which SQLite creates with the database's mode) 0600, the data
directory 0700 when Roster creates it."""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(path: Path) -> None:
    """Creates the directory 0700 (missing parents with the usual mode); an existing one is left as it is:
    it may be shared on purpose (a working directory)."""
    if path.is_dir():
        return
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def private_database(path: Path) -> None:
    """Creates the SQLite file 0600 before SQLite does (SQLite would follow the umask: 0644). A file made
    by an older Roster loses its group and other permissions: it holds participants and password hashes."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = name.stat().st_mode & 0o777
            if mode & 0o077:
                os.chmod(name, mode & 0o700)
        except FileNotFoundError:
            pass
