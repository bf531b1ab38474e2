"""`python -m tests.specs.trim_vault_openapi UPSTREAM_OPENAPI_JSON`: rewrite
`tests/specs/vault/openapi.json` from Vault's whole OpenAPI document.

Keeps the top-level keys, every path under the emulator's `SERVED_PREFIXES` (whole entries, as
upstream wrote them, in upstream's order) and the component schemas those paths reference,
directly or through other schemas. Written the way upstream writes the document (two-space indent,
UTF-8, final newline), so each kept entry is byte for byte upstream's text.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.emulators.vault.spec import SERVED_PREFIXES
from tests.specs import SPECS

TARGET = SPECS / "vault" / "openapi.json"
SCHEMA_REF = "#/components/schemas/"


def served(template: str) -> bool:
    return template.startswith(SERVED_PREFIXES)


def references(node: Any) -> Iterator[str]:
    """The names of the component schemas `node` points at with `$ref`."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
            yield ref.removeprefix(SCHEMA_REF)
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def trimmed(document: dict[str, Any]) -> dict[str, Any]:
    paths = {t: item for t, item in document["paths"].items() if served(t)}
    schemas = document["components"]["schemas"]
    wanted: set[str] = set()
    pending = list(references(paths))
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending.extend(references(schemas[name]))
    kept_schemas = {name: schema for name, schema in schemas.items() if name in wanted}
    out: dict[str, Any] = {}
    for key, value in document.items():
        if key == "paths":
            out[key] = paths
        elif key == "components":
            out[key] = {**value, "schemas": kept_schemas}
        else:
            out[key] = value
    return out


def render(document: dict[str, Any]) -> str:
    """Upstream's formatting: `json.dumps(indent=2, ensure_ascii=False)` and a final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.specs.trim_vault_openapi", description=__doc__
    )
    parser.add_argument("upstream", type=Path, help="Vault's whole openapi.json")
    parser.add_argument("--output", type=Path, default=TARGET)
    args = parser.parse_args(argv)
    raw = args.upstream.read_text(encoding="utf-8")
    document = json.loads(raw)
    if render(document) != raw:
        print(
            f"{args.upstream} is not formatted as upstream formats it: entries would not be "
            "byte-identical",
            file=sys.stderr,
        )
        return 1
    result = trimmed(document)
    args.output.write_text(render(result), encoding="utf-8")
    print(
        f"{args.output}: {len(result['paths'])} of {len(document['paths'])} paths, "
        f"{len(result['components']['schemas'])} of {len(document['components']['schemas'])} "
        "schemas",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
