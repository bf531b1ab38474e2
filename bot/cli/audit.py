"""`gatehouse audit ...`: verify the hash chain, export an incident's trail."""

import json
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from cryptography.exceptions import UnsupportedAlgorithm

from bot.cli.common import DatabaseOption, audited_database_url, database_errors, fail
from bot.cli.output import progress, show_table
from bot.domain.audit import AuditEvent, ChainReport, utc_iso, verify_rows
from bot.domain.checkpoints import CheckpointReport, check_signatures, unanchored_tail
from bot.domain.export import event_json
from bot.domain.summary import summarize_incident
from bot.store import SqlUnitOfWorkFactory, create_engine_for
from integrations.audit_signing import Ed25519Checker, new_key

audit_app = typer.Typer(help="Verify and export the audit trail.", no_args_is_help=True)


_ANCHOR = re.compile(r"(?P<seq>[0-9]{1,18}):(?P<digest>[0-9a-fA-F]{64})")  # ASCII digits only


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    MD = "md"


def _parse_anchor(text: str) -> tuple[int, str]:
    anchor = _ANCHOR.fullmatch(text.strip())
    if anchor is None:
        raise typer.BadParameter(
            f"'{text[:80]}' is not SEQ:HASH (a number, a colon, 64 hex digits)",
            param_hint="'--anchor'",
        )
    return int(anchor["seq"]), anchor["digest"].lower()


def _checker_or_exit(public_key: Path) -> Ed25519Checker:
    """The checker of a public key file, or one line saying why the file will not do."""
    try:
        return Ed25519Checker.from_file(public_key)
    except OSError as error:
        fail(f"cannot read the public key {public_key}: {error.strerror or error}", 2)
    except (ValueError, UnsupportedAlgorithm):
        fail(
            f"{public_key} is not an Ed25519 public key in PEM "
            "(the file `gatehouse audit keygen` writes)",
            2,
        )


@audit_app.command("verify")
def verify(
    anchor: Annotated[
        list[str] | None,
        typer.Option(
            "--anchor",
            metavar="SEQ:HASH",
            help="SEQ:HASH witnessed elsewhere (the close summary prints one). Repeatable.",
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            metavar="FILE",
            help="The checkpoint key's public PEM (from `gatehouse audit keygen`): also check "
            "the signed checkpoints, which catch a chain re-hashed without the key.",
        ),
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Check every link of the chain; exit 1 naming the first bad event and why."""
    anchors = dict(_parse_anchor(text) for text in anchor or [])
    witnessed = sorted(anchors)
    checker = _checker_or_exit(public_key) if public_key else None
    url = audited_database_url(database)
    with database_errors(url):
        engine = create_engine_for(url)
        try:
            with SqlUnitOfWorkFactory(engine).reader() as tx:
                signed = None
                if checker is not None:
                    mine = [c for c in tx.checkpoints.all() if c.key_id == checker.key_id]
                    signed = check_signatures(mine, checker)
                    anchors = {**signed.anchors, **anchors}
                head = tx.audit.head()
                total = head.seq if head else 0
                with progress("Checking the audit chain", total=total) as tracker:
                    report = verify_rows(
                        tracker.counted(tx.audit.chain_rows()),
                        anchors=anchors,
                        recanonical=tx.audit.canonical,
                    )
        finally:
            engine.dispose()
    problems = 0
    if signed is not None:
        for forged in signed.forged:
            typer.echo(f"✗ the checkpoint at event {forged.seq} has an invalid signature", err=True)
        problems += len(signed.forged)
        if report.head_seq and not signed.anchors:
            typer.echo("✗ no checkpoint signed with this key: nothing anchors the chain", err=True)
            problems += 1
    if not report.ok:
        kind = report.problem.value if report.problem else "bad"
        typer.echo(f"✗ event {report.first_bad_seq} {kind}: {report.detail}", err=True)
        typer.echo(f"  {report.checked} events before it check out.", err=True)
        raise typer.Exit(1)
    _show_intact(report, signed, checker, witnessed)
    if problems:
        raise typer.Exit(1)


def _show_intact(
    report: ChainReport,
    signed: CheckpointReport | None,
    checker: Ed25519Checker | None,
    witnessed: list[int],
) -> None:
    """The summary of a chain that checks out: a table on a terminal, lines in a pipe. Each
    `--anchor` given is named, so the reader knows the chain was held to it."""
    facts = [("events", str(report.checked)), ("head", f"{report.head_seq} {report.head_hash}")]
    lines = [
        f"✓ audit chain intact: {report.checked} events, head {report.head_seq} {report.head_hash}"
    ]
    if witnessed:
        matched = "event " + ", ".join(str(seq) for seq in witnessed)
        facts.append(("anchors matched", matched))
        lines.append(f"  anchors matched: {matched}")
    if signed is not None and checker is not None:
        verified = f"{len(signed.anchors)} verify with key {checker.key_id}"
        facts.append(("signed checkpoints", verified))
        lines.append(f"  signed checkpoints: {verified}")
        tail = unanchored_tail(signed, report.head_seq)
        if tail:
            facts.append(("not yet signed", f"events {tail[0]} to {tail[-1]}"))
            lines.append(
                f"  events {tail[0]} to {tail[-1]} are not yet covered by a signed checkpoint"
            )
    show_table(
        ["", ""],
        facts,
        title="✓ audit chain intact",
        header=False,
        plain=lambda: "\n".join(lines),
    )


@audit_app.command("keygen")
def keygen(
    public_key: Annotated[
        Path,
        typer.Option("--public-key", metavar="FILE", help="Where to write the public key (PEM)."),
    ] = Path("gatehouse-audit.pub"),
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace an existing public key file; the checkpoints signed so far verify only "
            "with the key in it.",
        ),
    ] = False,
) -> None:
    """Make an Ed25519 key for signed checkpoints: the private key for the bot's settings, the
    public key for whoever verifies."""
    if public_key.exists() and not force:
        fail(
            f"{public_key} already exists and verifies the checkpoints signed so far; "
            "pass --force to replace it, or --public-key for another file",
            2,
        )
    private_b64, public_pem = new_key()
    try:
        public_key.write_bytes(public_pem)
    except OSError as error:
        fail(f"cannot write {public_key}: {error.strerror or error}")
    typer.echo(f"Public key written to {public_key}. Give the bot this setting (keep it secret):")
    typer.echo(f"GATEHOUSE_AUDIT_SIGNING_KEY={private_b64}")


@audit_app.command("export")
def export(
    incident: Annotated[
        str, typer.Option("--incident", metavar="INC-…", help="Incident id, INC-…")
    ],
    output_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format", metavar="jsonl|md", help="jsonl: one event per line; md: a report"
        ),
    ] = ExportFormat.JSONL,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write here instead of stdout."),
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Export one incident's audit events."""
    url = audited_database_url(database)
    with database_errors(url):
        engine = create_engine_for(url)
        try:
            with (
                SqlUnitOfWorkFactory(engine).reader() as tx,
                progress(f"Reading the events of {incident}", total=None) as tracker,
            ):
                events = list(tracker.counted(tx.audit.events(incident_id=incident.upper())))
                head = tx.audit.head()
        finally:
            engine.dispose()
    if not events:
        typer.echo(f"✗ no audit events for incident {incident}", err=True)
        raise typer.Exit(1)
    if output_format is ExportFormat.JSONL:
        text = "".join(line + "\n" for line in _jsonl(events))
    else:
        summary = summarize_incident(events[0].entry.incident_id or incident, events, head=head)
        text = summary.to_markdown() + "\n" + _event_table(events)
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as error:
            fail(f"cannot write {output}: {error.strerror or error}")
        typer.echo(f"Wrote {len(events)} events to {output}")


def _jsonl(events: list[AuditEvent]) -> Iterator[str]:
    for event in events:
        yield json.dumps(event_json(event), ensure_ascii=False, sort_keys=True)


def _event_table(events: list[AuditEvent]) -> str:
    rows = [
        "## Events",
        "",
        "| seq | at | action | actor | request | hash |",
        "|---|---|---|---|---|---|",
    ]
    for event in events:
        entry = event.entry
        rows.append(
            f"| {event.seq} | {utc_iso(entry.at)} | {entry.action} | {entry.actor or '-'} "
            f"| {entry.request_id or '-'} | `{event.hash[:16]}…` |"
        )
    return "\n".join(rows) + "\n"
