"""requirements.lock pins exactly the runtime closure of pyproject's dependencies, as installed.

Regenerate it after changing [project.dependencies] or upgrading the virtualenv:

    .venv/bin/python -m tests.unit.deploy.test_requirements_lock > requirements.lock
"""

import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.unit.deploy.helpers import REPO

LOCK = REPO / "requirements.lock"
HEADER = """\
# Runtime dependencies of gatehouse, pinned: the closure of [project.dependencies] in
# pyproject.toml as installed (CPython 3.11 on Linux). Used by deploy/Dockerfile and as pip
# constraints by `make`. Regenerate, do not edit:
#   .venv/bin/python -m tests.unit.deploy.test_requirements_lock > requirements.lock
"""


def project_requirements() -> list[Requirement]:
    with (REPO / "pyproject.toml").open("rb") as file:
        pyproject = tomllib.load(file)
    return [Requirement(line) for line in pyproject["project"]["dependencies"]]


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


def runtime_closure() -> dict[NormalizedName, list[Requirement]]:
    """Every distribution the runtime needs, with the requirements that pull it in."""
    wanted: dict[NormalizedName, list[Requirement]] = {}
    extras_seen: dict[NormalizedName, frozenset[str]] = {}
    queue = [(requirement, frozenset[str]()) for requirement in project_requirements()]
    while queue:
        requirement, parent_extras = queue.pop()
        if not _applies(requirement, parent_extras):
            continue
        name = canonicalize_name(requirement.name)
        wanted.setdefault(name, []).append(requirement)
        extras = frozenset(requirement.extras) | extras_seen.get(name, frozenset())
        if name in extras_seen and extras == extras_seen[name]:
            continue
        extras_seen[name] = extras
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            pytest.fail(f"{requirement.name} is not installed: run make (pip install -e .)")
        for line in requires:
            queue.append((Requirement(line), extras))
    return wanted


def installed_versions() -> dict[NormalizedName, tuple[str, Version]]:
    """Installed distributions in the closure: (their own spelling, version)."""
    found: dict[NormalizedName, tuple[str, Version]] = {}
    for name in runtime_closure():
        distribution = metadata.distribution(name)
        found[name] = (distribution.metadata["Name"], Version(distribution.version))
    return found


def render_lock() -> str:
    pins = sorted(installed_versions().values(), key=lambda pin: canonicalize_name(pin[0]))
    return HEADER + "".join(f"{name}=={version}\n" for name, version in pins)


def read_lock() -> dict[NormalizedName, Version]:
    pins: dict[NormalizedName, Version] = {}
    for raw in LOCK.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1, f"{line}: pin one exact version"
        assert specifiers[0].operator == "==", f"{line}: pin with =="
        assert not requirement.extras, f"{line}: no extras in a lock; pin each distribution"
        assert requirement.marker is None, f"{line}: no markers in a lock"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{line}: pinned twice"
        pins[name] = Version(specifiers[0].version)
    return pins


def test_lock_names_exactly_the_runtime_closure() -> None:
    pinned = set(read_lock())
    closure = set(runtime_closure())
    assert "gatehouse" not in pinned, "the project itself is installed from source, not the lock"
    assert not closure - pinned, f"missing from requirements.lock: {sorted(closure - pinned)}"
    assert not pinned - closure, f"not runtime dependencies: {sorted(pinned - closure)}"


def test_lock_leaves_out_the_dev_dependencies() -> None:
    pinned = set(read_lock())
    for name in ("pytest", "mypy", "ruff", "hypothesis", "import-linter"):
        assert name not in pinned


def test_every_pin_satisfies_every_requirement_on_it() -> None:
    pins = read_lock()
    for name, requirements in runtime_closure().items():
        for requirement in requirements:
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"{name}=={pins[name]} does not satisfy {requirement}"
            )


def test_pins_satisfy_the_ranges_in_pyproject() -> None:
    pins = read_lock()
    for requirement in project_requirements():
        pinned = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pinned, prereleases=True), (
            f"requirements.lock pins {requirement.name}=={pinned}, pyproject wants {requirement}"
        )


def test_pins_are_the_installed_versions() -> None:
    installed = {name: version for name, (_, version) in installed_versions().items()}
    drift = {
        str(name): f"lock {version}, installed {installed[name]}"
        for name, version in read_lock().items()
        if installed.get(name) != version
    }
    assert not drift, f"regenerate requirements.lock or reinstall with make: {drift}"


if __name__ == "__main__":
    print(render_lock(), end="")
