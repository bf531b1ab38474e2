"""deploy/docker-compose.yml, .env.example and postgres/init.sql agree with the bot."""

import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.config import Settings, load_settings
from tests.unit.deploy.helpers import (
    DEPLOY,
    interpolated_variables,
    load_yaml,
    read_env_file,
    settings_variables,
    setup_sh_variables,
)
from tests.unit.deploy.test_dockerfile import DOCKERFILE, parse_dockerfile, stages

COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
INIT_SQL = DEPLOY / "postgres" / "init.sql"
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# Shapes of real credentials: placeholders must never look like these.
REAL_TOKEN = re.compile(
    r"xox[abpre]-\d|xapp-\d-|hvs\.[A-Za-z0-9_-]{20,}|hvb\.|^s\.[A-Za-z0-9]{24}$|"
    r"[0-9a-f]{32,}|-----BEGIN"
)
PLACEHOLDER = re.compile(r"your-|change-me")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = load_yaml(COMPOSE)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    value = service.get("environment", {})
    assert isinstance(value, dict), "use the mapping form of environment"
    return {key: str(item) for key, item in value.items()}


def volumes(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read-only) of each short-syntax volume."""
    found = []
    for entry in service.get("volumes", []):
        assert isinstance(entry, str), "use the short volume syntax"
        source, target, *mode = entry.split(":")
        found.append((source, target, mode == ["ro"]))
    return found


def resolved(value: str) -> str:
    """`value` with each `${NAME...}` interpolation replaced by a sample value."""
    return re.sub(r"\$\{[^}]*\}", "sample", value)


def is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def command_text(service: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in ("entrypoint", "command"):
        value = service.get(key, [])
        parts.extend([value] if isinstance(value, str) else value)
    return " ".join(parts)


def dockerfile_uid() -> str:
    final = stages(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")))[-1]
    users = [item.arguments for item in final.instructions if item.keyword == "USER"]
    return users[-1].split(":")[0]


def test_is_a_compose_spec_file(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the Compose spec has no version key"
    assert set(compose) <= {"name", "services", "volumes", "networks", "secrets", "configs"}


def test_the_stack(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"preflight", "postgres", "vault", "vault-setup", "gatehouse"}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["vault"]["image"] == "hashicorp/vault:1.17"
    assert services["vault-setup"]["image"] == "hashicorp/vault:1.17"
    assert services["preflight"]["image"] == "hashicorp/vault:1.17", "pulled anyway"


def test_build_context_and_dockerfile_exist(services: dict[str, dict[str, Any]]) -> None:
    built = {name: service["build"] for name, service in services.items() if "build" in service}
    assert set(built) == {"gatehouse"}
    for build in built.values():
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context.is_dir()
        assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


def test_env_files_exist_or_have_their_example(services: dict[str, dict[str, Any]]) -> None:
    for service in services.values():
        env_files = service.get("env_file", [])
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = COMPOSE.parent / env_file
            assert path.exists() or path.with_name(path.name + ".example").exists(), env_file
    assert services["gatehouse"]["env_file"] == ".env"


def test_bind_mounts_exist_and_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for source, target, _ in volumes(service):
            assert target.startswith("/"), f"{name}: {target}"
            if is_bind(source):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared


def test_bind_mounts_are_read_only(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for source, target, read_only in volumes(service):
            if is_bind(source):
                assert read_only, f"{name}: mount {source} at {target} read-only"


def test_gatehouse_sets_only_variables_the_bot_or_setup_sh_read(
    services: dict[str, dict[str, Any]],
) -> None:
    known = settings_variables() | setup_sh_variables()
    unknown = set(environment(services["gatehouse"])) - known
    assert not unknown, f"the bot reads no such variable: {sorted(unknown)}"


def test_vault_setup_sets_only_what_setup_sh_reads(services: dict[str, dict[str, Any]]) -> None:
    unknown = set(environment(services["vault-setup"])) - setup_sh_variables()
    assert not unknown, f"setup.sh reads no such variable: {sorted(unknown)}"


def test_only_the_bot_publishes_and_on_its_port(services: dict[str, dict[str, Any]]) -> None:
    port = Settings.model_fields["port"].default
    for name, service in services.items():
        for published in service.get("ports", []):
            assert name == "gatehouse", f"{name} publishes {published}"
            container_port = str(published).split(":")[-1].split("/")[0]
            assert container_port == str(port)
            assert environment(service).get("GATEHOUSE_PORT", str(port)) == str(port)
    assert services["gatehouse"]["ports"]


def test_depends_on_defined_services_with_conditions(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert spec["condition"] in CONDITIONS
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    conditions = {
        (name, dependency): spec["condition"]
        for name, service in services.items()
        for dependency, spec in service.get("depends_on", {}).items()
    }
    assert conditions == {
        ("postgres", "preflight"): "service_completed_successfully",
        ("vault", "preflight"): "service_completed_successfully",
        ("vault-setup", "vault"): "service_healthy",
        ("vault-setup", "postgres"): "service_healthy",
        ("gatehouse", "postgres"): "service_healthy",
        ("gatehouse", "vault-setup"): "service_healthy",
    }


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in postgres
    assert any(arg.startswith(("--host=127.0.0.1", "-h")) for arg in postgres), (
        "over TCP, or it passes while initdb scripts still run"
    )
    assert services["vault"]["healthcheck"]["test"] == ["CMD", "vault", "status"]
    assert environment(services["vault"])["VAULT_ADDR"].startswith("http://127.0.0.1:")


def test_vault_runs_in_dev_mode_with_the_root_token_from_env(
    services: dict[str, dict[str, Any]],
) -> None:
    vault = services["vault"]
    assert "-dev" in vault["command"]
    assert "IPC_LOCK" in vault["cap_add"]
    token = environment(vault)["VAULT_DEV_ROOT_TOKEN_ID"]
    assert token.startswith("${VAULT_DEV_ROOT_TOKEN_ID")
    assert environment(services["vault-setup"])["VAULT_TOKEN"] == token


def test_vault_setup_runs_setup_sh_and_hands_the_approle_to_the_bot(
    services: dict[str, dict[str, Any]],
) -> None:
    setup, bot = services["vault-setup"], services["gatehouse"]
    mounts = {source: (target, read_only) for source, target, read_only in volumes(setup)}
    target, read_only = mounts["./vault"]
    assert read_only
    assert f"{target}/setup.sh" in command_text(setup)

    env_file = environment(setup)["GATEHOUSE_APPROLE_ENV_FILE"]
    shared = [
        (source, target) for source, target, _ in volumes(setup) if env_file.startswith(target)
    ]
    assert len(shared) == 1
    bot_mounts = {source: (target, ro) for source, target, ro in volumes(bot)}
    assert bot_mounts[shared[0][0]] == (shared[0][1], True), "the bot mounts it read-only"
    assert f". {env_file}" in command_text(bot)
    assert f"chown {dockerfile_uid()}:" in command_text(setup), "setup.sh writes it mode 600"


def test_vault_setup_sets_a_restarted_dev_vault_up_again(
    services: dict[str, dict[str, Any]],
) -> None:
    """Dev-mode Vault is in memory. Compose's `depends_on.restart` covers restarts compose
    makes; the container runtime restarts Vault on its own after a crash or a reboot, so
    vault-setup stays up and runs setup.sh again whenever Vault lost the bot's AppRole."""
    setup = services["vault-setup"]
    assert setup["restart"] == "unless-stopped"
    assert setup["depends_on"]["vault"]["restart"] is True
    command = command_text(setup)
    assert re.search(r"while :; do\s+if sh /setup/setup.sh --if-needed; then", command)
    assert "sleep 5 & wait $$!" in command, "a stop signal ends it at once"
    assert "trap 'exit 0' TERM INT" in command
    marker = setup["healthcheck"]["test"][-1]
    assert setup["healthcheck"]["test"][:3] == ["CMD", "test", "-f"]
    assert f"touch {marker}" in command and f"rm -f {marker}" in command
    assert str(Path(marker).parent) in setup["tmpfs"], "a restarted container starts unhealthy"


def test_nothing_starts_before_the_placeholder_check_passed(
    services: dict[str, dict[str, Any]],
) -> None:
    def needs_preflight(name: str) -> bool:
        dependencies = services[name].get("depends_on", {})
        return any(
            (dependency == "preflight" and spec["condition"] == "service_completed_successfully")
            or needs_preflight(dependency)
            for dependency, spec in dependencies.items()
        )

    assert services["preflight"]["env_file"] == ".env", "it sees what the bot and compose see"
    for name in set(services) - {"preflight"}:
        assert needs_preflight(name), f"{name} may start before the placeholder check"


def run_preflight(services: dict[str, dict[str, Any]], values: dict[str, str]) -> Any:
    """The preflight command as compose runs it ($$ is a literal $), on `values` only."""
    script = " ".join(services["preflight"]["command"]).replace("$$", "$")
    assert services["preflight"]["entrypoint"] == ["/bin/sh", "-c"]
    return subprocess.run(
        ["/bin/sh", "-c", script],
        env={"PATH": os.environ["PATH"], **values},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def test_the_stack_refuses_to_start_with_a_placeholder_naming_each(
    services: dict[str, dict[str, Any]],
) -> None:
    active, _ = read_env_file(ENV_EXAMPLE)
    placeholders = sorted(name for name, value in active.items() if PLACEHOLDER.search(value))
    assert {"SLACK_BOT_TOKEN", "POSTGRES_PASSWORD", "VAULT_DEV_ROOT_TOKEN_ID"} <= set(placeholders)

    refused = run_preflight(services, active)

    assert refused.returncode != 0
    named = [
        re.match(r"deploy/.env: (\w+) still has", line) for line in refused.stderr.splitlines()
    ]
    assert [m[1] for m in named if m] == placeholders
    for name in placeholders:
        assert active[name] not in refused.stderr + refused.stdout, "names, never values"

    one_left = {
        name: (value if name == "GATEHOUSE_DB_PASSWORD" else f"set{index}")
        for index, (name, value) in enumerate(active.items())
    }
    refused = run_preflight(services, one_left)
    assert refused.returncode != 0
    assert refused.stderr.startswith("deploy/.env: GATEHOUSE_DB_PASSWORD still has")

    filled = {name: f"set{index}" for index, name in enumerate(active)}
    started = run_preflight(services, filled)
    assert (started.returncode, started.stdout, started.stderr) == (0, "", "")


def test_gatehouse_checks_its_settings_then_migrates_and_runs(
    services: dict[str, dict[str, Any]],
) -> None:
    """`run --migrate` checks every setting and reaches Slack and Vault before it migrates."""
    command = command_text(services["gatehouse"])
    assert "set -a" in command
    assert re.search(r"exec gatehouse run --migrate$", command)


def test_gatehouse_uses_postgres_vault_and_the_mounted_example_policy(
    services: dict[str, dict[str, Any]],
) -> None:
    bot = services["gatehouse"]
    env = environment(bot)
    url = urlsplit(resolved(env["DATABASE_URL"]))
    assert url.scheme == "postgresql"
    assert (url.hostname, url.port, url.path) == ("postgres", 5432, "/gatehouse")
    assert env["VAULT_ADDR"] == "http://vault:8200"
    mounts = {target: (source, read_only) for source, target, read_only in volumes(bot)}
    assert mounts[env["GATEHOUSE_POLICY"]] == ("./policy.example.yaml", True)


def test_required_compose_variables_are_in_the_env_example(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", text))
    active, _ = read_env_file(ENV_EXAMPLE)
    assert required <= set(active), f"add to .env.example: {sorted(required - set(active))}"
    optional = interpolated_variables(text) - required
    assert not optional, f"no silent defaults for the stack's secrets: {sorted(optional)}"


# --- .env.example -------------------------------------------------------------------------


@pytest.fixture
def no_settings_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in settings_variables():
        monkeypatch.delenv(name, raising=False)


def test_env_example_documents_every_setting() -> None:
    active, documented = read_env_file(ENV_EXAMPLE)
    missing = settings_variables() - set(active) - documented
    assert not missing, f"document in deploy/.env.example: {sorted(missing)}"


def test_env_example_sets_only_known_variables() -> None:
    active, documented = read_env_file(ENV_EXAMPLE)
    known = (
        settings_variables()
        | setup_sh_variables()
        | interpolated_variables(COMPOSE.read_text(encoding="utf-8"))
    )
    unknown = (set(active) | documented) - known
    assert not unknown, f"nothing reads: {sorted(unknown)}"


@pytest.mark.usefixtures("no_settings_in_environment")
def test_env_example_comments_show_the_real_defaults() -> None:
    fields = {field.validation_alias: name for name, field in Settings.model_fields.items()}
    checked = 0
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"#\s?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if not match or match[1] not in fields:
            continue
        field = Settings.model_fields[fields[match[1]]]
        if field.default is None:
            continue
        shown = Settings.model_validate({match[1]: match[2]})
        assert getattr(shown, fields[match[1]]) == field.default, (
            f"{match[1]}={match[2]}: the default is {field.default!r}"
        )
        checked += 1
    assert checked >= 5


def test_env_example_placeholders_never_look_like_credentials() -> None:
    active, _ = read_env_file(ENV_EXAMPLE)
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        value = line.partition("=")[2]
        assert not REAL_TOKEN.search(value.strip()), f"looks like a real credential: {line}"
    for name, value in active.items():
        if re.search(r"TOKEN|SECRET|PASSWORD", name):
            assert PLACEHOLDER.search(value), f"{name}: use an obvious placeholder"


@pytest.mark.usefixtures("no_settings_in_environment")
def test_env_example_loads_as_settings() -> None:
    settings = load_settings(env_file=ENV_EXAMPLE)
    assert settings.mode == "socket"
    assert settings.missing_for_run() == []


@pytest.mark.usefixtures("no_settings_in_environment")
def test_env_example_values_are_valid_when_uncommented(tmp_path: Path) -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    uncommented = [re.sub(r"^#\s?(?=[A-Z][A-Z0-9_]*=)", "", line) for line in lines]
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(uncommented) + "\n", encoding="utf-8")
    settings = load_settings(env_file=env_file)
    assert settings.vault_auth == "token"


# --- postgres/init.sql ----------------------------------------------------------------------


def test_init_sql_is_mounted_into_the_initdb_directory(services: dict[str, dict[str, Any]]) -> None:
    mounts = {source: target for source, target, _ in volumes(services["postgres"])}
    assert mounts["./postgres/init.sql"].startswith("/docker-entrypoint-initdb.d/")


def test_init_sql_reads_its_passwords_from_the_postgres_service(
    services: dict[str, dict[str, Any]],
) -> None:
    wanted = set(re.findall(r"\\getenv \w+ (\w+)", INIT_SQL.read_text(encoding="utf-8")))
    assert wanted
    assert wanted <= set(environment(services["postgres"]))


def test_init_sql_creates_what_setup_sh_and_the_bot_expect(
    services: dict[str, dict[str, Any]],
) -> None:
    sql = INIT_SQL.read_text(encoding="utf-8")
    databases = set(re.findall(r"CREATE DATABASE (\w+)", sql))
    schemas = set(re.findall(r"CREATE SCHEMA (\w+)", sql))
    roles = dict(re.findall(r"CREATE ROLE (\w+) WITH ([A-Z ]+)", sql))

    bot_url = urlsplit(resolved(environment(services["gatehouse"])["DATABASE_URL"]))
    assert bot_url.path.lstrip("/") in databases
    assert bot_url.username in roles
    assert "SUPERUSER" not in roles[str(bot_url.username)]

    setup = environment(services["vault-setup"])
    assert urlsplit(setup["GATEHOUSE_DB_CONNECTION_URL"]).path.lstrip("/") in databases
    vault_role = setup["GATEHOUSE_DB_USERNAME"]
    assert "CREATEROLE" in roles[vault_role]
    assert f"GRANT pg_signal_backend TO {vault_role}" in sql

    granted = {
        schema
        for path in (DEPLOY / "vault" / "sql").glob("*.sql")
        for schema in re.findall(r"SCHEMA (\w+)", path.read_text(encoding="utf-8"))
    }
    assert granted == {"inference_logs", "feature_store"}
    assert granted <= schemas
    for schema in granted:
        assert f"CREATE SCHEMA {schema} AUTHORIZATION {vault_role}" in sql
