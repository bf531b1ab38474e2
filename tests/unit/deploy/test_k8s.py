"""deploy/k8s: the kustomize base and the production overlay, read file by file and rendered."""

import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.unit.deploy.helpers import (
    DEPLOY,
    K8S,
    REPO,
    default_port,
    load_yaml,
    load_yaml_documents,
    settings_variables,
)

BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
SECRET_NAME = "gatehouse"
SECRET_VARIABLES = {
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "VAULT_TOKEN",
    "GATEHOUSE_VAULT_SECRET_ID",
    "DATABASE_URL",
    "GATEHOUSE_AUDIT_SIGNING_KEY",
    "GATEHOUSE_AUDIT_WEBHOOK_SECRET",
    "GATEHOUSE_SPLUNK_HEC_TOKEN",
}
TOKEN_LIKE = re.compile(r"xox[abpre]-|xapp-|hvs\.|hvb\.|^s\.[A-Za-z0-9]{20,}|://[^/@\s]+:[^/@\s]+@")
Manifest = dict[str, Any]


def kustomization(directory: Path) -> dict[str, Any]:
    document = load_yaml(directory / "kustomization.yaml")
    assert isinstance(document, dict)
    assert document["kind"] == "Kustomization"
    return document


def manifests(directory: Path) -> list[Manifest]:
    """Every document of every resource the kustomization lists (not the generated ones)."""
    found: list[Manifest] = []
    for resource in kustomization(directory).get("resources", []):
        path = directory / resource
        if path.is_file():
            found.extend(load_yaml_documents(path))
    return found


def one(items: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    matching = [
        item
        for item in items
        if item["kind"] == kind and (name is None or item["metadata"]["name"] == name)
    ]
    assert len(matching) == 1, f"{len(matching)} {kind} {name or ''}"
    return matching[0]


def pod_spec(workload: Manifest) -> dict[str, Any]:
    spec = workload["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def container(workload: Manifest) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1
    assert isinstance(containers[0], dict)
    return containers[0]


def env_values(workload: Manifest) -> dict[str, Any]:
    return {item["name"]: item for item in container(workload).get("env", [])}


def generated_literals(directory: Path, name: str) -> dict[str, str]:
    for generator in kustomization(directory).get("configMapGenerator", []):
        if generator["name"] == name:
            return dict(line.split("=", 1) for line in generator.get("literals", []))
    return {}


@pytest.fixture(scope="module")
def base() -> list[Manifest]:
    return manifests(BASE)


@pytest.fixture(scope="module")
def deployment(base: list[Manifest]) -> Manifest:
    return one(base, "Deployment", "gatehouse")


@pytest.fixture(scope="module")
def job(base: list[Manifest]) -> Manifest:
    return one(base, "Job")


def test_every_yaml_file_parses_into_kubernetes_objects() -> None:
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        if path.name == "policy.yaml":
            assert isinstance(load_yaml(path), dict)
            continue
        for document in load_yaml_documents(path):
            assert {"apiVersion", "kind"} <= set(document), path
            if document["kind"] != "Kustomization":
                assert document["metadata"]["name"], path


def test_every_file_a_kustomization_names_exists() -> None:
    for directory in (BASE, PRODUCTION):
        spec = kustomization(directory)
        named = list(spec.get("resources", []))
        named += [patch["path"] for patch in spec.get("patches", []) if "path" in patch]
        for generator in spec.get("configMapGenerator", []):
            named += [entry.split("=")[-1] for entry in generator.get("files", [])]
        for name in named:
            assert (directory / name).exists(), f"{directory.name}: {name}"
    assert "../../base" in kustomization(PRODUCTION)["resources"]


def test_the_base_has_each_piece(base: list[Manifest]) -> None:
    kinds = sorted(item["kind"] for item in base)
    assert kinds == sorted(
        ["Deployment", "Service", "Job", "PodDisruptionBudget", "ServiceAccount"]
    )


def test_policy_copy_equals_the_example_byte_for_byte() -> None:
    copy = BASE / "policy.yaml"
    assert copy.read_bytes() == (DEPLOY / "policy.example.yaml").read_bytes(), (
        "cp deploy/policy.example.yaml deploy/k8s/base/policy.yaml"
    )


def test_policy_configmap_is_generated_from_the_copy() -> None:
    generators = {g["name"]: g for g in kustomization(BASE)["configMapGenerator"]}
    assert generators["gatehouse-policy"]["files"] == ["policy.yaml"]


def effective_security(workload: Manifest) -> dict[str, Any]:
    merged = dict(pod_spec(workload).get("securityContext", {}))
    merged.update(container(workload).get("securityContext", {}))
    return merged


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_runs_locked_down(base: list[Manifest], kind: str) -> None:
    workload = one(base, kind)
    security = effective_security(workload)
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert not security["capabilities"].get("add")
    assert security.get("privileged", False) is False
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    volumes = {volume["name"]: volume for volume in pod_spec(workload)["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container(workload)["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "a writable /tmp on a read-only root"
    resources = container(workload)["resources"]
    assert set(resources["requests"]) >= {"cpu", "memory"}
    assert set(resources["limits"]) >= {"memory"}


def test_runs_as_the_image_user(base: list[Manifest]) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER (\d+)", dockerfile, flags=re.MULTILINE)
    assert users and int(users[-1]) == effective_security(one(base, "Deployment"))["runAsUser"]


def test_deployment_serves_http_with_probes(deployment: Manifest) -> None:
    env = env_values(deployment)
    assert env["GATEHOUSE_MODE"]["value"] == "http"
    main = container(deployment)
    assert main["ports"] == [{"name": "http", "containerPort": default_port(), "protocol": "TCP"}]
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main.get("args", ["run"]) == ["run"]
    limits = main["resources"]["limits"]
    assert set(limits) == {"cpu", "memory"}


def test_deployment_reads_the_policy_from_the_configmap(deployment: Manifest) -> None:
    policy_path = PurePosixPath(env_values(deployment)["GATEHOUSE_POLICY"]["value"])
    volumes = {volume["name"]: volume for volume in pod_spec(deployment)["volumes"]}
    mount = next(
        mount
        for mount in container(deployment)["volumeMounts"]
        if PurePosixPath(mount["mountPath"]) == policy_path.parent
    )
    assert mount["readOnly"] is True
    assert volumes[mount["name"]]["configMap"]["name"] == "gatehouse-policy"
    assert policy_path.name == "policy.yaml", "the file is named after the generator's key"


def test_deployment_logs_in_to_vault_with_its_service_account(
    base: list[Manifest], deployment: Manifest
) -> None:
    env = env_values(deployment)
    assert env["GATEHOUSE_VAULT_AUTH"]["value"] == "kubernetes"
    spec = pod_spec(deployment)
    account = one(base, "ServiceAccount", spec["serviceAccountName"])
    assert account["metadata"]["name"] == "gatehouse"
    token_path = env.get("GATEHOUSE_VAULT_KUBERNETES_TOKEN_PATH")
    if token_path is None:
        assert spec["automountServiceAccountToken"] is True, "the default path needs the token"
    config = generated_literals(BASE, "gatehouse-config")
    assert config.get("GATEHOUSE_VAULT_KUBERNETES_ROLE") or "GATEHOUSE_VAULT_KUBERNETES_ROLE" in env
    assert "VAULT_ADDR" in config or "VAULT_ADDR" in env


def test_deployment_sets_only_variables_the_bot_reads(deployment: Manifest) -> None:
    names = set(env_values(deployment))
    for directory in (BASE, PRODUCTION):
        names |= set(generated_literals(directory, "gatehouse-config"))
    unknown = names - settings_variables()
    assert not unknown, f"the bot reads no such variable: {sorted(unknown)}"
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL"} <= names


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_secrets_only_by_reference(base: list[Manifest], kind: str) -> None:
    workload = one(base, kind)
    for name, item in env_values(workload).items():
        if name in SECRET_VARIABLES:
            assert "value" not in item, f"{name} inline"
            assert item["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME
            assert item["valueFrom"]["secretKeyRef"]["key"] == name
        else:
            assert not TOKEN_LIKE.search(str(item.get("value", ""))), name
    for source in container(workload).get("envFrom", []):
        if "secretRef" in source:
            assert source["secretRef"]["name"] == SECRET_NAME


def test_no_secret_values_anywhere() -> None:
    for path in K8S.rglob("*.yaml"):
        if path.name == "policy.yaml":
            continue
        for document in load_yaml_documents(path):
            assert not (document["kind"] == "Secret" and {"data", "stringData"} & set(document))
            assert "secretGenerator" not in document, f"{path}: secrets stay out of the repo"
    for directory in (BASE, PRODUCTION):
        for generator in kustomization(directory).get("configMapGenerator", []):
            for literal in generator.get("literals", []):
                name, value = literal.split("=", 1)
                assert name not in SECRET_VARIABLES, f"{name} in a ConfigMap"
                assert not TOKEN_LIKE.search(value), literal


def test_service_fronts_the_http_port(base: list[Manifest], deployment: Manifest) -> None:
    service = one(base, "Service")
    assert service["spec"]["ports"][0]["port"] == 80
    target = service["spec"]["ports"][0]["targetPort"]
    ports = {port["name"]: port["containerPort"] for port in container(deployment)["ports"]}
    assert ports.get(target, target) == default_port()
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_pdb_keeps_one_replica(base: list[Manifest], deployment: Manifest) -> None:
    pdb = one(base, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_migration_job_runs_db_upgrade(job: Manifest, deployment: Manifest) -> None:
    main = container(job)
    assert " ".join(main.get("command", []) + main.get("args", [])).endswith("db upgrade")
    assert main["image"] == container(deployment)["image"]
    assert pod_spec(job)["restartPolicy"] in {"Never", "OnFailure"}
    assert "DATABASE_URL" in env_values(job)
    selector = deployment["spec"]["selector"]["matchLabels"]
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= job_labels.items(), "Service and PDB must not pick it up"


def test_production_overlay_sets_replicas_image_and_resources() -> None:
    spec = kustomization(PRODUCTION)
    patches = [load_yaml(PRODUCTION / patch["path"]) for patch in spec["patches"]]
    deployment_patch = one(patches, "Deployment", "gatehouse")
    assert deployment_patch["spec"]["replicas"] >= 2
    resources = deployment_patch["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert {"requests", "limits"} <= set(resources)
    images = {image["name"]: image for image in spec["images"]}
    assert images["gatehouse"]["newTag"] not in {"", "latest"}
    assert "newName" in images["gatehouse"]


def render(directory: Path) -> list[Manifest]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the files were checked one by one above")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def test_production_renders(deployment: Manifest) -> None:
    rendered = render(PRODUCTION)
    spec = kustomization(PRODUCTION)
    image = spec["images"][0]
    expected_image = f"{image['newName']}:{image['newTag']}"
    namespaces = {item["metadata"].get("namespace") for item in rendered}
    assert namespaces == {spec["namespace"]}

    live = one(rendered, "Deployment", "gatehouse")
    assert live["spec"]["replicas"] >= 2
    assert container(live)["image"] == expected_image
    assert container(one(rendered, "Job"))["image"] == expected_image
    assert effective_security(live) == effective_security(deployment)
    assert container(live)["resources"]["limits"]

    policy = next(
        item
        for item in rendered
        if item["kind"] == "ConfigMap" and item["metadata"]["name"].startswith("gatehouse-policy-")
    )
    example = (DEPLOY / "policy.example.yaml").read_text(encoding="utf-8")
    assert policy["data"]["policy.yaml"] == example
    volumes = {volume["name"]: volume for volume in pod_spec(live)["volumes"]}
    assert volumes["policy"]["configMap"]["name"] == policy["metadata"]["name"]

    config = next(
        item
        for item in rendered
        if item["kind"] == "ConfigMap" and item["metadata"]["name"].startswith("gatehouse-config-")
    )
    assert container(live)["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    assert not [item for item in rendered if item["kind"] == "Secret"]


# --- what the README says ------------------------------------------------------------------

README = K8S / "README.md"


def package_version() -> str:
    found = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert found
    return found[1]


def make_image_command(image: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "image", f"IMAGE={image}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_make_image_the_overlays_and_the_readme_agree_on_the_tag() -> None:
    version = package_version()
    assert make_image_command("registry.example.com/team/gatehouse") == (
        f"docker build -f deploy/Dockerfile -t registry.example.com/team/gatehouse:{version} ."
    )
    for directory in (BASE, PRODUCTION):
        (image,) = kustomization(directory)["images"]
        assert image["newTag"] == version, f"{directory.name}: the tag `make image` gives"

    text = README.read_text(encoding="utf-8")
    pushed = re.search(r"make image IMAGE=(\S+)", text)
    assert pushed, "the README says how to build your own image"
    assert f"docker push {pushed[1]}:{version}" in text
    assert f"newName: {pushed[1]}\n    newTag: {version}" in text
    assert "overlays/production/kustomization.yaml" in text


def test_the_secret_keys_the_readme_requires_are_the_ones_a_pod_needs(
    deployment: Manifest,
) -> None:
    text = README.read_text(encoding="utf-8")
    created = set(re.findall(r"--from-literal=(\w+)=", text))
    required = {
        name
        for name, item in env_values(deployment).items()
        if "valueFrom" in item and not item["valueFrom"]["secretKeyRef"].get("optional")
    }
    assert created == required
    assert "GATEHOUSE_AUDIT_SIGNING_KEY" in required, "doctor fails without it"
    optional_sentence = text[text.index("Optional keys") :].split(".")[0]
    assert not required & set(re.findall(r"`(\w+)`", optional_sentence))
