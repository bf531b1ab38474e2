"""The database secrets engine with the PostgreSQL plugin, run against a real server."""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql

from .common import (
    JSON,
    SYSTEM_DEFAULT_TTL,
    SYSTEM_MAX_TTL,
    Reply,
    Request,
    Secret,
    VaultError,
    as_bool,
    as_str_list,
    bad_request,
    not_found,
    parse_duration,
    pg_timestamp,
    random_base62,
    read_or_delete,
)
from .tokens import calculate_ttl

PLUGIN = "postgresql-database-plugin"
_CONFIG_FIELDS = {
    "plugin_name", "plugin_version", "allowed_roles", "verify_connection", "password_policy",
    "root_rotation_statements", "root_credentials_rotate_statements",
}  # fmt: skip
_PASSWORD_WARNING = (
    "Password found in connection_url, use a templated url to enable root rotation and prevent "
    "read access to password information."
)


@dataclass
class Connection:
    name: str
    plugin_name: str
    details: JSON
    allowed_roles: list[str] = field(default_factory=list)
    verify_connection: bool = True
    password_policy: str = ""
    root_rotation_statements: list[str] = field(default_factory=list)

    def conninfo(self) -> str:
        url = str(self.details.get("connection_url", ""))
        username = str(self.details.get("username", ""))
        password = str(self.details.get("password", ""))
        url = url.replace("{{username}}", quote(username, safe=""))
        return url.replace("{{password}}", quote(password, safe=""))

    def read_data(self) -> JSON:
        details = {k: v for k, v in self.details.items() if k != "password"}
        return {
            "allowed_roles": self.allowed_roles,
            "connection_details": details,
            "password_policy": self.password_policy,
            "plugin_name": self.plugin_name,
            "plugin_version": "",
            "root_credentials_rotate_statements": self.root_rotation_statements,
            "verify_connection": self.verify_connection,
        }


@dataclass
class Role:
    name: str
    db_name: str = ""
    creation_statements: list[str] = field(default_factory=list)
    revocation_statements: list[str] = field(default_factory=list)
    rollback_statements: list[str] = field(default_factory=list)
    renew_statements: list[str] = field(default_factory=list)
    default_ttl: int = 0
    max_ttl: int = 0

    def read_data(self) -> JSON:
        return {
            "db_name": self.db_name,
            "creation_statements": self.creation_statements,
            "revocation_statements": self.revocation_statements,
            "rollback_statements": self.rollback_statements,
            "renew_statements": self.renew_statements,
            "default_ttl": self.default_ttl,
            "max_ttl": self.max_ttl,
            "credential_type": "password",
        }


def generate_password() -> str:
    """Vault's default password policy: 20 of [A-Za-z0-9-], at least one of each class."""
    alphabet = string.ascii_letters + string.digits + "-"
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(20))
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
            and "-" in password
        ):
            return password


def _split(statements: list[str]) -> list[str]:
    queries: list[str] = []
    for statement in statements:
        if re.search(r"\$\$|\bBEGIN\b[\s\S]*\bEND\b", statement, re.IGNORECASE):
            queries.append(statement)
            continue
        queries.extend(part.strip() for part in statement.split(";") if part.strip())
    return queries


def _render(query: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        query = query.replace("{{" + key + "}}", value)
    return query


class DatabaseBackend:
    type_name = "database"

    def __init__(self, *, detached: bool = False) -> None:
        """`detached`: no database behind the engine (for demos): statements are recorded in
        `executed` instead of run, and credentials log in nowhere."""
        self.connections: dict[str, Connection] = {}
        self.roles: dict[str, Role] = {}
        self.detached = detached
        self.executed: list[str] = []

    # -- routing --------------------------------------------------------------------------

    def exists(self, subpath: str) -> bool | None:
        kind, _, name = subpath.partition("/")
        if kind == "config" and name:
            return name in self.connections
        if kind == "roles" and name:
            return name in self.roles
        return None

    def handle(self, req: Request) -> Reply:
        kind, _, name = req.subpath.partition("/")
        op = req.operation
        if kind in ("config", "roles") and (not name or op == "list"):
            if op != "list":
                raise VaultError(405, "unsupported operation")
            items = self.connections if kind == "config" else self.roles
            if not items:
                raise not_found()
            return Reply(data={"keys": sorted(items)})
        if kind == "config" and name:
            return self._config(req, name)
        if kind == "roles" and name:
            return self._role(req, name)
        if kind == "creds" and name:
            if op != "read":
                raise VaultError(405, "unsupported operation")
            return self._creds(req, name)
        raise VaultError(404, "unsupported path")

    def _config(self, req: Request, name: str) -> Reply:
        done = read_or_delete(req, self.connections, name)
        if done is not None:
            return done
        if req.operation not in ("create", "update"):
            raise VaultError(405, "unsupported operation")
        body = req.body
        existing = self.connections.get(name)
        plugin = str(body.get("plugin_name") or (existing.plugin_name if existing else ""))
        if not plugin:
            raise bad_request("empty plugin name")
        if plugin != PLUGIN:
            raise bad_request(
                f"error creating database object: plugin not found in the catalog: {plugin}"
            )
        details = dict(existing.details) if existing else {}
        details.update({k: v for k, v in body.items() if k not in _CONFIG_FIELDS})
        connection = Connection(
            name=name,
            plugin_name=plugin,
            details=details,
            allowed_roles=as_str_list(body["allowed_roles"])
            if "allowed_roles" in body
            else (existing.allowed_roles if existing else []),
            verify_connection=as_bool(body.get("verify_connection"), True),
            password_policy=str(body.get("password_policy") or ""),
            root_rotation_statements=as_str_list(body.get("root_rotation_statements")),
        )
        url = str(details.get("connection_url") or "")
        if not url:
            raise bad_request("error creating database object: connection_url cannot be empty")
        if connection.verify_connection and not self.detached:
            try:
                with psycopg.connect(connection.conninfo(), connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
            except psycopg.Error as error:
                first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
                raise bad_request(
                    "error creating database object: error verifying connection: "
                    f"ping failed: {first}"
                ) from None
        self.connections[name] = connection
        warnings = []
        parts = urlsplit(url) if "://" in url else None
        if parts is not None and parts.password and "{{password}}" not in url:
            warnings.append(_PASSWORD_WARNING)
        return Reply(status=204, warnings=warnings).no_content_unless_warned()

    def _role(self, req: Request, name: str) -> Reply:
        done = read_or_delete(req, self.roles, name)
        if done is not None:
            return done
        if req.operation not in ("create", "update"):
            raise VaultError(405, "unsupported operation")
        body = req.body
        role = Role(**vars(self.roles[name])) if name in self.roles else Role(name=name)
        if "db_name" in body:
            role.db_name = str(body["db_name"] or "")
        for key in ("creation_statements", "revocation_statements", "rollback_statements",
                    "renew_statements"):  # fmt: skip
            if key in body:
                value = body[key]
                setattr(role, key, [value] if isinstance(value, str) else as_str_list(value))
        for key in ("default_ttl", "max_ttl"):
            if key in body:
                setattr(role, key, parse_duration(body[key], key))
        if not role.db_name:
            raise bad_request("empty database name attribute")
        if not role.creation_statements:
            raise bad_request("empty creation statements")
        self.roles[name] = role
        return Reply(status=204)

    # -- credentials ----------------------------------------------------------------------

    def _lookup(self, role_name: str) -> tuple[Role, Connection]:
        role = self.roles.get(role_name)
        if role is None:
            raise bad_request(f"unknown role: {role_name}")
        connection = self.connections.get(role.db_name)
        if connection is None:
            raise VaultError(
                500, f'failed to find entry for connection with name: "{role.db_name}"'
            )
        if "*" not in connection.allowed_roles and role_name not in connection.allowed_roles:
            raise VaultError(500, f'"{role_name}" is not an allowed role')
        return role, connection

    def _creds(self, req: Request, role_name: str) -> Reply:
        role, connection = self._lookup(role_name)
        ttl = role.default_ttl or SYSTEM_DEFAULT_TTL
        if role.max_ttl and ttl > role.max_ttl:
            ttl = role.max_ttl
        ttl = min(ttl, SYSTEM_MAX_TTL)
        token = req.token
        if token is not None and token.expire_time is not None:
            ttl = max(0, min(ttl, round(token.expire_time - req.now)))
        display = str(token.display_name if token is not None else "token")
        username = f"v-{display[:8]}-{role_name[:8]}-{random_base62(20)}-{int(req.now)}"[:63]
        password = generate_password()
        values = {
            "name": username,
            "username": username,
            "password": password,
            "expiration": pg_timestamp(req.now + ttl + 5),
        }
        try:
            self._execute(connection, role.creation_statements, values)
        except psycopg.Error as error:
            raise VaultError(500, f"unable to create user: {error}") from None
        internal = {"username": username, "role": role_name, "db_name": role.db_name}
        return Reply(
            data={"username": username, "password": password},
            secret=Secret(ttl=ttl, internal=internal),
        )

    def _execute(
        self, connection: Connection, statements: list[str], values: dict[str, str]
    ) -> None:
        if self.detached:
            self.executed += [
                _render(query, {**values, "password": "***"}) for query in _split(statements)
            ]
            return
        with psycopg.connect(connection.conninfo(), connect_timeout=5) as conn, conn.transaction():
            for query in _split(statements):
                conn.execute(_render(query, values).encode())

    def renew_secret(
        self, internal: dict[str, str], *, increment: int, issue_time: float, now: float,
        token_left: int | None,
    ) -> tuple[int, list[str]]:  # fmt: skip
        role = self.roles.get(internal["role"])
        if role is None:
            raise bad_request(
                f'error during renew: could not find role with name "{internal["role"]}"'
            )
        ttl, warnings = calculate_ttl(
            increment=increment,
            backend_ttl=role.default_ttl,
            backend_max=role.max_ttl,
            explicit_max=0,
            start=issue_time,
            now=now,
        )
        if token_left is not None:
            ttl = min(ttl, token_left)
        connection = self.connections.get(role.db_name)
        if connection is None:
            raise bad_request(f'failed to find entry for connection with name: "{role.db_name}"')
        statements = role.renew_statements or [
            "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';"
        ]
        values = {"name": internal["username"], "username": internal["username"],
                  "expiration": pg_timestamp(now + ttl + 5)}  # fmt: skip
        if ttl > 0:
            self._execute(connection, statements, values)
        return ttl, warnings

    def revoke_secret(self, internal: dict[str, str]) -> None:
        """Run the role's revocation statements, or Vault's default drop (plus ending sessions)."""
        connection = self.connections.get(internal.get("db_name", ""))
        if connection is None:
            raise bad_request(
                f'failed to find entry for connection with name: "{internal.get("db_name")}"'
            )
        role = self.roles.get(internal.get("role", ""))
        username = internal["username"]
        if role is not None and role.revocation_statements:
            values = {"name": username, "username": username}
            self._execute(connection, role.revocation_statements, values)
            return
        if self.detached:
            self.executed.append(f'DROP ROLE IF EXISTS "{username}"')
            return
        _default_revoke(connection.conninfo(), username)


def _default_revoke(conninfo: str, username: str) -> None:
    user = sql.Identifier(username)
    with psycopg.connect(conninfo, connect_timeout=5) as conn:
        row = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)).fetchone()
        if row is None:
            return
        schemas = conn.execute(
            "SELECT DISTINCT table_schema FROM information_schema.role_column_grants "
            "WHERE grantee = %s",
            (username,),
        ).fetchall()
        database = conn.execute("SELECT current_database()").fetchone()
        statements: list[Any] = []
        for (schema,) in schemas:
            name = sql.Identifier(schema)
            statements.append(
                sql.SQL("REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA {} FROM {}").format(
                    name, user
                )
            )
            statements.append(sql.SQL("REVOKE USAGE ON SCHEMA {} FROM {}").format(name, user))
        statements += [
            sql.SQL("REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM {}").format(user),
            sql.SQL("REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public FROM {}").format(user),
            sql.SQL("REVOKE USAGE ON SCHEMA public FROM {}").format(user),
            sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
                sql.Identifier(str(database[0] if database else "")), user
            ),
        ]
        with conn.transaction():
            # VALID UNTIL does not end open sessions: end them first (and again right before
            # the drop), so no session holds a lock the revokes would wait on.
            _terminate(conn, username)
            for statement in statements:
                conn.execute(statement)
            _terminate(conn, username)
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(user))


def _terminate(conn: psycopg.Connection[Any], username: str) -> None:
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE usename = %s AND pid <> pg_backend_pid()",
        (username,),
    )
