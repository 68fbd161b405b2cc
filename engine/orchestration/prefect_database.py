"""The runner's Prefect database, made from a template instead of migrated on first use.

A new SQLite database goes through every one of Prefect's migrations when its server first
starts: ~20 s of the ~30 s a first ``bcdrill run`` took on a 2-core machine. Set-up
(``scripts/setup.sh``: ``python -m engine.orchestration.prefect_database``) migrates one empty
database per installation and Prefect version, under ``<venv>/share/bcdrill``; a runner whose
Prefect home has no database yet starts from a copy of it, and so does a command's temporary server
on the default database of its Prefect home. Without a template (another Prefect
version, or set-up skipped) the server migrates a new database as before — slower, not wrong.
The copy is an empty, migrated database: it holds no flow run, no secret and no setting.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

DATABASE = "prefect.db"  # Prefect's default SQLite file in its home
# Settings that point Prefect's server at another database: then there is nothing to seed.
_OTHER_DATABASE = ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL")


def template_path() -> Path:
    """The migrated empty database of this installation's Prefect version."""
    return Path(sys.prefix) / "share" / "bcdrill" / f"prefect-{version('prefect')}.db"


def seed(prefect_home: Path) -> bool:
    """Copy the template into ``prefect_home`` when it has no database yet; True if copied."""
    template = template_path()
    target = prefect_home / DATABASE
    if target.exists() or not template.exists() or any(os.environ.get(n) for n in _OTHER_DATABASE):
        return False
    prefect_home.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = target.with_name(f".{DATABASE}.{os.getpid()}.tmp")
    shutil.copyfile(template, partial)
    try:  # never over a database another command's server has opened meanwhile
        os.link(partial, target)
    except FileExistsError:
        return False
    finally:
        partial.unlink()
    return True


def seed_default_database() -> bool:
    """Seed the database this process's Prefect settings use, when it is the default file in the
    Prefect home (a temporary server's: ``bcdrill run --in-process``, ``recover``); True if copied."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    home = Path(settings.home)
    url = settings.server.database.connection_url
    if url is None or url.get_secret_value() != f"sqlite+aiosqlite:///{home / DATABASE}":
        return False
    return seed(home)


def make_template() -> Path:
    """Migrate an empty database in a scratch Prefect home and keep it as the template."""
    target = template_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bcdrill-prefect-template-") as scratch:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update({"PREFECT_HOME": scratch, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
        argv = [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"]
        subprocess.run(argv, env=env, check=True, capture_output=True, timeout=900)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(Path(scratch) / DATABASE, partial)
        os.replace(partial, target)
    return target


if __name__ == "__main__":
    if template_path().exists():
        print(f"setup: the runner's Prefect database template is ready ({template_path()})")
    else:
        print(f"setup: migrating the runner's Prefect database template once ({make_template()})")

__all__ = ["DATABASE", "make_template", "seed", "seed_default_database", "template_path"]
