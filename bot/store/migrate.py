"""Run the Alembic migrations from code: no alembic.ini, the URL is passed in."""

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RangeNotAncestorError, RevisionError
from sqlalchemy import inspect, text

import migrations
from bot.store.engine import create_engine_for, normalize_url

# The revisions whose downgrade drops a table of the audit trail, and what that table holds.
AUDIT_TABLES = {"0001": "audit_events", "0004": "audit_checkpoints"}


class RevisionProblem(ValueError):
    """A revision the migrations do not know, or one that lies the wrong way from the database."""


@dataclass(frozen=True)
class Step:
    """One migration a move undoes or applies: its revision and the first line of its docstring."""

    revision: str
    summary: str

    @property
    def audit_table(self) -> str | None:
        """The audit table this migration creates, which undoing it drops with its rows."""
        return AUDIT_TABLES.get(self.revision)


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if url is not None:
        rendered = normalize_url(url).render_as_string(hide_password=False)
        # The config is an INI parser: a literal % (URL-encoded password) must be doubled.
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The revision the database is at; None for a database Alembic never touched."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    head = _scripts().get_current_head()
    if head is None:
        raise RuntimeError("the migrations directory has no revision")
    return head


def upgrade_steps(current: str | None, target: str) -> list[Step]:
    """The migrations an upgrade from `current` to `target` applies, oldest first."""
    scripts = _scripts()
    try:
        applied = list(scripts.iterate_revisions(target, current, implicit_base=True))
    except RangeNotAncestorError:
        raise RevisionProblem(_not_above(target, current)) from None
    except RevisionError as error:
        raise RevisionProblem(_unknown(target, error, "+N")) from None
    if not applied and current is not None and _resolves_below(scripts, target, current):
        raise RevisionProblem(_not_above(target, current))
    return [_step(script) for script in reversed(applied)]


def downgrade_steps(current: str | None, target: str) -> list[Step]:
    """The migrations a downgrade from `current` to `target` undoes, newest first."""
    scripts = _scripts()
    try:
        undone = list(scripts.iterate_revisions(current, target, select_for_downgrade=True))
    except RangeNotAncestorError:
        if current is None:
            raise RevisionProblem(
                "the database has no revision yet: nothing to downgrade"
            ) from None
        raise RevisionProblem(
            f"{target} is not below {_at(current)}: a downgrade only goes back"
        ) from None
    except RevisionError as error:
        raise RevisionProblem(_unknown(target, error, "-N")) from None
    return [_step(script) for script in undone]


def audit_rows(url: str) -> dict[str, int]:
    """How many rows each audit table of the database holds (tables it lacks are left out)."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            present = [t for t in AUDIT_TABLES.values() if inspect(connection).has_table(t)]
            return {
                # The names come from AUDIT_TABLES, never from input.
                table: int(
                    connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
                )
                for table in present
            }
    finally:
        engine.dispose()


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def _step(script: Script) -> Step:
    return Step(revision=script.revision, summary=" ".join(script.doc.split()))


def _resolves_below(scripts: ScriptDirectory, target: str, current: str) -> bool:
    below = {script.revision for script in scripts.iterate_revisions(current, "base")}
    resolved = scripts.get_revision(target)
    return resolved is not None and resolved.revision in below and resolved.revision != current


def _at(revision: str | None) -> str:
    return "an empty database" if revision is None else f"revision {revision}"


def _not_above(target: str, current: str | None) -> str:
    return f"{target} is not above {_at(current)}: an upgrade only goes forward"


def _unknown(target: str, error: RevisionError, relative: str) -> str:
    known = [script.revision for script in _scripts().walk_revisions()]
    told = str(error).splitlines()[0]
    cause = "no such revision" if told.startswith("No such revision") else told
    return (
        f"{target}: {cause}; the revisions are {known[-1]} to {known[0]}, "
        f"and base, head or a relative {relative}"
    )
