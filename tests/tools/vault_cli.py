"""A stand-in for the `vault` CLI, for the subset deploy/vault/setup.sh uses.

No Vault binary can be installed here, so tests put this on PATH as `vault` and run setup.sh
against the emulator. It sends the same HTTP requests the real CLI sends: `write` turns
`key=value` pairs into a JSON object of strings (`key=@file` reads the file), `-f` allows an
empty write, `-field` prints one field of `data` (or of `auth`), and errors exit with 2.
"""

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class CliError(Exception):
    pass


def request(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    address = os.environ["VAULT_ADDR"].rstrip("/")
    data = None if body is None else json.dumps(body).encode()
    call = urllib.request.Request(f"{address}/v1/{path}", data=data, method=method)
    call.add_header("X-Vault-Token", os.environ.get("VAULT_TOKEN", ""))
    call.add_header("X-Vault-Request", "true")
    if data is not None:
        call.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(call, timeout=30) as response:
            text = response.read()
    except urllib.error.HTTPError as error:
        errors = json.loads(error.read() or b"{}").get("errors", [])
        raise CliError(f"Error {method} {path}: Code: {error.code}. Errors: {errors}") from None
    return json.loads(text) if text else {}


def parse_pairs(pairs: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"Failed to parse K=V data: invalid key/value pair {pair!r}")
        if value.startswith("@"):
            value = Path(value[1:]).read_text(encoding="utf-8")
        elif value == "-":
            value = sys.stdin.read()
        body[key] = value
    return body


# How the CLI names the fields of a login's `auth` block (`vault write -field=token ...`).
AUTH_FIELDS = {
    "token": "client_token",
    "token_accessor": "accessor",
    "token_duration": "lease_duration",
    "token_renewable": "renewable",
    "token_policies": "policies",
}


def print_result(response: dict[str, Any], field: str | None) -> None:
    if field is None:
        print(json.dumps(response.get("data") or response.get("auth") or {}, indent=2))
        return
    data, auth = response.get("data") or {}, response.get("auth") or {}
    if field in data:
        print(data[field])
        return
    if AUTH_FIELDS.get(field) in auth:
        print(auth[AUTH_FIELDS[field]])
        return
    raise CliError(f'Field "{field}" not present in secret')


def run(argv: list[str]) -> None:
    if not argv:
        raise CliError("usage: vault <command> [args]")
    command, args = argv[0], argv[1:]
    flags = {a.split("=", 1)[0]: ([*a.split("=", 1), ""])[1] for a in args if a.startswith("-")}
    rest = [a for a in args if not a.startswith("-")]
    field = flags.get("-field")
    if command == "read":
        response = request("GET", rest[0])
        if not response:
            raise CliError(f"No value found at {rest[0]}")
        print_result(response, field)
    elif command == "write":
        body = parse_pairs(rest[1:])
        if not body and "-f" not in flags and "-force" not in flags:
            raise CliError("Must supply data or use -force")
        response = request("PUT", rest[0], body)
        if response:
            print_result(response, field)
    elif command in ("secrets", "auth") and rest[:1] == ["enable"]:
        kind = rest[1]
        mount = flags.get("-path") or kind
        prefix = "sys/mounts" if command == "secrets" else "sys/auth"
        request("POST", f"{prefix}/{mount}", {"type": kind})
    elif command == "policy" and rest[:1] == ["write"]:
        name, source = rest[1], rest[2]
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        request("PUT", f"sys/policies/acl/{name}", {"policy": text})
    elif command == "policy" and rest[:1] == ["read"]:
        print(request("GET", f"sys/policies/acl/{rest[1]}")["data"]["policy"])
    else:
        raise CliError(f"this stand-in does not know `vault {' '.join(argv)}`")


def main() -> None:
    try:
        run(sys.argv[1:])
    except CliError as error:
        print(error, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
