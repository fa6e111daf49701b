"""Engine creation and schema migration (alembic) for the catalog database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from lookalike.errors import SchemaOutOfDateError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000
# The newest migration; a test checks it equals alembic's head. Knowing it lets an up-to-date database be
# opened without importing alembic (a tenth of a second on every command).
SCHEMA_HEAD = "0005"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite ``url`` (None for another database or an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout, and its folder is made."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if (path := sqlite_file(url)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine | None = None) -> Config:
    """An alembic Config pointing at the packaged migrations (and at ``engine`` when given)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
        cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str | None:
    """The newest migration this version of lookalike knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to ``revision`` (``base`` empties it)."""
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def _stored_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):
        return None


def ensure_schema(engine: Engine, auto_upgrade: bool = True) -> None:
    """Make sure the database schema is the one this code expects.

    Args:
        engine: the catalog database.
        auto_upgrade: migrate an older (or empty) database forward; when False, say how instead.

    Raises:
        SchemaOutOfDateError: the database is older and ``auto_upgrade`` is False, or it was written by a
            newer lookalike.
    """
    if _stored_revision(engine) == SCHEMA_HEAD:
        return
    from alembic.script import ScriptDirectory

    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current is not None and current not in known:
        raise SchemaOutOfDateError(
            f"the database is at migration {current}, which this lookalike does not know; "
            "it was written by a newer version"
        )
    if not auto_upgrade:
        raise SchemaOutOfDateError(
            f"the database is at migration {current or 'none'}, this lookalike needs {head}; run `lookalike db upgrade`"
        )
    upgrade(engine)
