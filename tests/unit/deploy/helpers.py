"""What the deployment tests share: where things are, and what the bot and setup.sh read."""

import re
from pathlib import Path
from typing import Any

import yaml

from bot.config import Settings

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
SETUP_SH = DEPLOY / "vault" / "setup.sh"

# `${NAME}`, `${NAME:-default}`, `${NAME:?message}` and `$NAME` in shell and Compose files.
_SHELL_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def settings_variables() -> set[str]:
    """Every environment variable `bot.config.Settings` reads, from its field aliases."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        assert isinstance(alias, str), f"Settings.{name} has no single environment variable"
        names.add(alias)
    return names


def setup_sh_variables() -> set[str]:
    """The variables deploy/vault/setup.sh reads from its environment (not the ones it sets)."""
    text = SETUP_SH.read_text(encoding="utf-8")
    assigned = set(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=", text, flags=re.MULTILINE))
    return {name for name in _SHELL_VARIABLE.findall(text) if name not in assigned}


def interpolated_variables(text: str) -> set[str]:
    """The variables a Compose file interpolates (`$$` escapes are not interpolation)."""
    return set(_SHELL_VARIABLE.findall(text.replace("$$", "")))


def default_port() -> int:
    default = Settings.model_fields["port"].default
    assert isinstance(default, int)
    return default


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    return [document for document in documents if document is not None]


def read_env_file(path: Path) -> tuple[dict[str, str], set[str]]:
    """(`NAME=value` lines that are set, names only documented in `# NAME=value` lines)."""
    active: dict[str, str] = {}
    documented: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            active[match[1]] = match[2]
            continue
        match = re.fullmatch(r"#\s?([A-Z][A-Z0-9_]*)=.*", line.strip())
        if match:
            documented.add(match[1])
    return active, documented - set(active)
