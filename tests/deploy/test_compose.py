"""deploy/docker-compose.yml and the instance config it ships, checked without Docker.

The compose file validates against the Compose Specification schema (tests/fixtures/compose/,
as bundled by docker-compose 1.29.2; Apache-2.0), after the interpolation Docker Compose does.
What it names must exist in this repository, so that a rename cannot leave it stale: every
`stripe-warehouse` command parses with the CLI's own parser, every other program is a console
script of the locked Dagster, every environment variable is read by our code, by
deploy/dagster.yaml or celery.yaml, by the image it runs, or is named by one of its commands;
every variable those configs read is set for the services that load them. Ports are bound to
127.0.0.1. deploy/dagster.yaml's storage opens a real instance on the session's PostgreSQL
server (tests/conftest.py) with the compose file's variables.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from commands.cli import build_parser
from tests.paths import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
SCHEMA = REPO_ROOT / "tests" / "fixtures" / "compose" / "compose_spec.json"
# Set by the images the file runs, not by us
THIRD_PARTY_VARIABLES = {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD", "DAGSTER_HOME"}
VENV_BIN = Path(sys.executable).parent
# ${VAR}, ${VAR:-default}, ${VAR:?error}
INTERPOLATION = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")
SECRETS = {"STRIPE_WAREHOUSE_SECRET_KEY": "a-secret-key", "STRIPE_WAREHOUSE_PG_PASSWORD": "pw"}


def _interpolate(text: str, environment: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if name in environment:
            return environment[name]
        if kind == "?":
            raise KeyError(f"{name}: {rest}")
        return rest or ""
    return INTERPOLATION.sub(value, text)


def _compose(environment: dict[str, str] | None = None) -> dict:
    return yaml.safe_load(_interpolate(COMPOSE.read_text(), environment or SECRETS))


def _our_sources() -> str:
    """Every Python file and profile of the project (what can read a variable)."""
    paths = [*REPO_ROOT.glob("*.yml")]
    for package in ("stripe_warehouse", "pipelines", "orchestration", "service", "commands"):
        paths += (REPO_ROOT / package).rglob("*.py")
    return "\n".join(path.read_text() for path in paths)


def _config_variables(path: Path) -> set[str]:
    """The variables a Dagster config file reads (``env: NAME``)."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if set(node) == {"env"}:
                found.add(node["env"])
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(yaml.safe_load(path.read_text()))
    return found


def test_the_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft201909Validator(schema).validate(_compose())
    # and the schema does reject a broken file: a service's ports as a mapping
    broken = _compose()
    broken["services"]["webserver"]["ports"] = {"3000": 3000}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(schema).validate(broken)


def test_it_refuses_to_start_without_its_secrets() -> None:
    for missing in SECRETS:
        with pytest.raises(KeyError, match=missing):
            _compose({name: v for name, v in SECRETS.items() if name != missing})


def test_every_published_port_is_bound_to_localhost() -> None:
    ports = [port for service in _compose()["services"].values()
             for port in service.get("ports", [])]
    assert len(ports) == 4  # postgres, redis, the Dagster UI, the webhook service
    assert all(str(port).startswith("127.0.0.1:") for port in ports), ports


def test_it_runs_the_webserver_the_daemon_n_workers_and_the_webhook_service() -> None:
    services = _compose()["services"]
    assert services["webserver"]["command"][0] == "dagster-webserver"
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    assert services["run-worker"]["command"][:3] == ["dagster-celery", "worker", "start"]
    assert services["run-worker"]["deploy"]["replicas"] >= 2
    assert services["webhooks"]["command"][:2] == ["stripe-warehouse", "serve"]
    assert services["postgres"]["image"] == "postgres:15"


def test_every_command_exists_here() -> None:
    parser = build_parser()
    workspace = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())
    for name, service in _compose()["services"].items():
        command = service.get("command")
        if not command:
            continue
        if command[0] == "stripe-warehouse":
            parser.parse_args(command[1:])  # exits (SystemExit) on an unknown command or option
        elif command[0] == "dagster-celery":
            # not in the test venv: the image installs it at the locked Dagster's 0.x release
            dagster_dbt = re.search(r"^dagster-dbt==(\S+)$", (REPO_ROOT / "requirements.lock")
                                    .read_text(), re.M)[1]
            assert f"dagster-celery=={dagster_dbt}" in (DEPLOY / "Dockerfile").read_text()
        else:
            assert (VENV_BIN / command[0]).exists() or shutil.which(command[0]), (name, command)
        if "-w" in command:
            assert command[command.index("-w") + 1] == "/app/workspace.yaml"
            assert workspace["load_from"][0]["python_module"]["module_name"] == \
                "orchestration.definitions"


def test_every_variable_is_read_by_someone_and_every_read_one_is_set() -> None:
    compose = _compose()
    sources = _our_sources()
    configs = _config_variables(DEPLOY / "dagster.yaml") | _config_variables(
        DEPLOY / "celery.yaml")
    named_by_command = {word for service in compose["services"].values()
                        for word in service.get("command") or []}
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        for variable in environment:
            assert (variable in THIRD_PARTY_VARIABLES or variable in configs
                    or variable in named_by_command or f'"{variable}"' in sources
                    or f"'{variable}'" in sources), (name, variable)
        if name in ("webserver", "daemon", "run-worker"):
            assert configs <= set(environment), (name, configs - set(environment))
    # the image's Dagster instance is the shipped one
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "cp deploy/dagster.yaml deploy/celery.yaml /opt/dagster/home/" in dockerfile


def test_the_instance_config_opens_a_real_instance_on_the_server(
        tmp_path: Path, own_postgres_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster import DagsterInstance

    from orchestration.ui import create_dagster_schema
    from stripe_warehouse.warehouse_target import WarehouseTarget

    server = urlsplit(own_postgres_database)
    environment = _compose()["services"]["daemon"]["environment"]
    # the compose file's variables, pointed at this session's server
    for variable in _config_variables(DEPLOY / "dagster.yaml"):
        monkeypatch.setenv(variable, str(environment[variable]))
    monkeypatch.setenv("STRIPE_WAREHOUSE_PG_HOST", server.hostname)
    monkeypatch.setenv("STRIPE_WAREHOUSE_PG_USER", server.username)
    monkeypatch.setenv("DBT_ENV_SECRET_STRIPE_WAREHOUSE_PG_PASSWORD", server.password)
    monkeypatch.setenv("STRIPE_WAREHOUSE_PG_DATABASE", server.path.lstrip("/"))
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    config["storage"]["postgres"]["postgres_db"]["port"] = server.port
    launcher = config.pop("run_launcher")  # dagster-celery is the image's, not this venv's
    assert (launcher["module"], launcher["class"]) == ("dagster_celery.launcher",
                                                       "CeleryRunLauncher")
    assert set(launcher["config"]) <= {"broker", "backend", "include", "default_queue",
                                       "config_source"}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    create_dagster_schema(WarehouseTarget.postgres(own_postgres_database))
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 4
        instance.get_runs()
    (tables,) = WarehouseTarget.postgres(own_postgres_database).fetch_all(
        "select count(*) from information_schema.tables where table_schema = 'dagster'")[0]
    assert tables > 10  # Dagster's tables, in their own schema
