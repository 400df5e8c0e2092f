"""The deployment files (compose.yaml, Dockerfile, .dockerignore), checked against the code they run.

No Docker engine is needed: compose.yaml is validated against the Compose Specification schema
(../shared/compose-spec.json; skipped when missing, except with CI=true), every command is parsed by
the real click CLI without being invoked, every PARTNERMATCH_* variable must be a Settings field
whose value passes Settings validation, and the healthcheck must hit a real route. None of these
tests takes `db_session` or `client`, so they run once, not once per database backend.
"""

import json
import os
import re
import shlex
import tomllib
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import click
import jsonschema
import pytest
import yaml
from packaging.specifiers import SpecifierSet
from sqlalchemy.engine import make_url

from partnermatch.app import create_app
from partnermatch.cli import cli
from partnermatch.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_SCHEMA = ROOT.parent / "shared" / "compose-spec.json"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CONSOLE_SCRIPT = "partnermatch"
ENV_PREFIX = str(Settings.model_config.get("env_prefix", ""))
SETTINGS_VARIABLES = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


# --- Compose interpolation (the subset of the spec that compose files use) -------------------------


def interpolate(text: str, environment: Mapping[str, str]) -> str:
    """`$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR:+alt}`, nested."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
        elif text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 2)
            out.append(_substitute(text[i + 2 : end], environment))
            i = end + 1
        elif match := re.compile(_NAME).match(text, i + 1):
            out.append(environment.get(match.group(), ""))
            i = match.end()
        else:
            raise ValueError(f"invalid interpolation at {text[i:]!r}")
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for index in range(start, len(text)):
        if text.startswith("${", index):
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(f"unclosed ${{ in {text!r}")


def _substitute(expression: str, environment: Mapping[str, str]) -> str:
    match = re.fullmatch(rf"({_NAME})(?:(:?[-?+])(.*))?", expression, re.DOTALL)
    if match is None:
        raise ValueError(f"invalid interpolation ${{{expression}}}")
    name, operator, argument = match.groups()
    value = environment.get(name)
    if operator is None:
        return value or ""
    missing = not value if operator.startswith(":") else value is None
    argument = interpolate(argument, environment)
    if operator.endswith("-"):
        return argument if missing else str(value)
    if operator.endswith("+"):
        return "" if missing else argument
    if missing:
        raise ValueError(f"${{{expression}}}: {name} is required ({argument or 'no message'})")
    return str(value)


def interpolate_all(node: Any, environment: Mapping[str, str]) -> Any:
    """Compose interpolates values (not keys) everywhere in the file."""
    if isinstance(node, str):
        return interpolate(node, environment)
    if isinstance(node, dict):
        return {key: interpolate_all(value, environment) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_all(value, environment) for value in node]
    return node


@pytest.mark.parametrize(
    ("text", "environment", "expected"),
    [
        ("plain", {}, "plain"),
        ("a$$b", {}, "a$b"),
        ("${X:-d}", {}, "d"),
        ("${X:-d}", {"X": ""}, "d"),
        ("${X-d}", {"X": ""}, ""),
        ("${X:-d}", {"X": "v"}, "v"),
        ("$X/${Y}", {"X": "1", "Y": "2"}, "1/2"),
        ("${X:+alt}", {"X": "v"}, "alt"),
        ("${X:+alt}", {}, ""),
        ("${X:-${Y:-inner}}", {}, "inner"),
        ("u:${P:-pw}@db", {}, "u:pw@db"),
    ],
)
def test_interpolation(text: str, environment: dict[str, str], expected: str) -> None:
    assert interpolate(text, environment) == expected


def test_interpolation_of_a_required_variable_fails() -> None:
    with pytest.raises(ValueError, match="SECRET is required"):
        interpolate("${SECRET:?set it}", {})


# --- Dockerfile and .dockerignore ------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; comments dropped, `\\` continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continuation are dropped by Docker, too
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "the Dockerfile has no FROM"
    return instructions[starts[-1] :]


def exec_form(keyword: str, arguments: str) -> list[str]:
    # Shell form would make /bin/sh PID 1, which does not pass SIGTERM on to granian.
    try:
        argv = json.loads(arguments)
    except json.JSONDecodeError:
        argv = None
    assert isinstance(argv, list), f"{keyword} must use the exec (JSON array) form: {arguments}"
    assert all(isinstance(part, str) for part in argv), f"{keyword} {arguments}"
    return argv


def env_assignments(arguments: str) -> dict[str, str]:
    parts = shlex.split(arguments)
    if parts and "=" not in parts[0]:  # legacy `ENV KEY value`
        return {parts[0]: " ".join(parts[1:])}
    return dict(part.split("=", 1) for part in parts)


def copy_from_context(arguments: str) -> list[str]:
    """A COPY's sources and destination, or [] when it copies from another stage (`--from=`)."""
    parts = shlex.split(arguments)
    if any(part.startswith("--from") for part in parts):
        return []
    return [part for part in parts if not part.startswith("--")]


class Image:
    """What the final stage of our Dockerfile leaves in the image."""

    def __init__(self, text: str) -> None:
        self.all_instructions = dockerfile_instructions(text)
        self.instructions = final_stage(self.all_instructions)
        self.entrypoint: list[str] = []
        self.cmd: list[str] = []
        self.env: dict[str, str] = {}
        self.workdir = PurePosixPath("/")
        self.user = "root"
        self.exposed: set[str] = set()
        self.copies: dict[PurePosixPath, list[str]] = {}  # destination -> context sources
        for keyword, arguments in self.instructions:
            if keyword == "ENTRYPOINT":
                self.entrypoint = exec_form(keyword, arguments)
                self.cmd = []  # Docker resets CMD when ENTRYPOINT is set in the same stage
            elif keyword == "CMD":
                self.cmd = exec_form(keyword, arguments)
            elif keyword == "ENV":
                self.env.update(env_assignments(arguments))
            elif keyword == "WORKDIR":
                self.workdir = self.workdir / arguments
            elif keyword == "USER":
                self.user = arguments.split(":", 1)[0]
            elif keyword == "EXPOSE":
                self.exposed.update(port.split("/", 1)[0] for port in arguments.split())
            elif keyword == "COPY" and (paths := copy_from_context(arguments)):
                *sources, destination = paths
                self.copies[self.workdir / destination] = sources

    @property
    def argv(self) -> list[str]:
        return [*self.entrypoint, *self.cmd]

    def context_files(self) -> Iterator[str]:
        """Every file a COPY (in any stage) takes from the build context, relative to the context."""
        for keyword, arguments in self.all_instructions:
            paths = copy_from_context(arguments) if keyword == "COPY" else []
            for source in paths[:-1]:
                path = ROOT / source
                assert path.exists(), f"COPY {source}: not in the build context"
                if path.is_file():
                    yield source
                    continue
                for file in sorted(path.rglob("*")):
                    if file.is_file() and "__pycache__" not in file.parts:
                        yield file.relative_to(ROOT).as_posix()


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip("/")
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            regex += pattern[i : end + 1]
            i = end + 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.compile(regex)


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent excludes its files."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _dockerignore_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


@pytest.fixture(scope="module")
def image() -> Image:
    return Image(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def dockerignore() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# --- compose.yaml ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())  # resolves the `<<: *app` merge keys
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any]) -> dict[str, Any]:
    """compose.yaml as `docker compose config` sees it with no variables set: defaults only."""
    result = interpolate_all(raw_compose, {})
    assert isinstance(result, dict)
    return result


def built_from_our_dockerfile(service: Mapping[str, Any]) -> bool:
    build = service.get("build")
    if build is None:
        return False
    if isinstance(build, str):
        build = {"context": build}
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    return (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


@pytest.fixture(scope="module")
def our_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = {
        name: service for name, service in compose["services"].items() if built_from_our_dockerfile(service)
    }
    assert {"migrate", "app"} <= set(services), f"services built from the Dockerfile: {sorted(services)}"
    return services


def as_argv(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def service_argv(service: Mapping[str, Any], image: Image) -> list[str]:
    """The process a service starts: compose's entrypoint/command over the image's ENTRYPOINT/CMD."""
    if "entrypoint" in service:  # overriding the entrypoint also drops the image's CMD
        return [*as_argv(service["entrypoint"]), *as_argv(service.get("command") or [])]
    command = as_argv(service["command"]) if "command" in service else image.cmd
    return [*image.entrypoint, *command]


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def volume_source(volume: str | Mapping[str, Any]) -> str:
    return volume.split(":", 1)[0] if isinstance(volume, str) else str(volume.get("source", ""))


def volume_target(volume: str | Mapping[str, Any]) -> str:
    return volume.split(":")[1] if isinstance(volume, str) else str(volume.get("target", ""))


def test_compose_file_matches_the_compose_specification(raw_compose: dict[str, Any]) -> None:
    if not COMPOSE_SCHEMA.is_file():
        reason = f"Compose Specification schema not found at {COMPOSE_SCHEMA}"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true requires it)", pytrace=False)
        pytest.skip(reason)
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    # The spec declares "https://json-schema.org/draft-07/schema"; jsonschema knows the metaschemas by
    # their canonical ids (http://..., with or without the empty fragment).
    declared = str(schema.get("$schema", ""))
    canonical = re.sub(r"^https://", "http://", declared).rstrip("#")
    validator_class = jsonschema.validators.validator_for({"$schema": canonical}, default=None)
    assert validator_class is not None, f"unknown JSON Schema draft {declared!r} in {COMPOSE_SCHEMA}"
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    # As written, and as Compose sees it after interpolating the defaults.
    for label, document in [("as written", raw_compose), ("interpolated", interpolate_all(raw_compose, {}))]:
        errors = sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
        assert not errors, f"compose.yaml ({label}):\n" + "\n".join(
            f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}" for error in errors
        )


def resolve_cli(argv: list[str]) -> click.Context:
    """Parse argv with the real `partnermatch` click group, down to the leaf command; invoke nothing."""
    assert argv, "empty command"
    assert argv[0] == CONSOLE_SCRIPT, f"`{shlex.join(argv)}` does not run the `{CONSOLE_SCRIPT}` command"
    command: click.Command = cli
    name, args = CONSOLE_SCRIPT, argv[1:]
    parent: click.Context | None = None
    while True:
        try:
            context = command.make_context(name, list(args), parent=parent, resilient_parsing=False)
        except click.ClickException as error:
            pytest.fail(f"`{shlex.join(argv)}`: {error.format_message()}", pytrace=False)
        if not isinstance(command, click.Group):
            return context
        # Click 8.2 deprecated the public name of the subcommand's own arguments (`protected_args`).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*context.protected_args, *context.args]
        assert rest, f"`{shlex.join(argv)}` names no subcommand of `{context.command_path}`"
        try:
            sub_name, subcommand, args = command.resolve_command(context, rest)
        except click.ClickException as error:
            pytest.fail(f"`{shlex.join(argv)}`: {error.format_message()}", pytrace=False)
        assert sub_name is not None
        assert subcommand is not None
        name, command, parent = sub_name, subcommand, context


@pytest.mark.parametrize(
    "argv",
    [["partnermatch", "serve", "--hots", "0.0.0.0"], ["partnermatch", "db", "upgrad"], ["partnermatch"]],
    ids=["unknown-option", "unknown-command", "no-command"],
)
def test_resolve_cli_rejects_what_the_cli_rejects(argv: list[str]) -> None:
    with pytest.raises((pytest.fail.Exception, AssertionError)):
        resolve_cli(argv)


def test_every_service_command_parses_with_the_cli(
    our_services: dict[str, dict[str, Any]], image: Image
) -> None:
    paths = {}
    for name, service in our_services.items():
        paths[name] = resolve_cli(service_argv(service, image)).command_path
    assert paths["migrate"] == "partnermatch db upgrade"
    assert paths["app"] == "partnermatch serve"


def test_migrate_runs_without_a_prompt(our_services: dict[str, dict[str, Any]], image: Image) -> None:
    # A one-shot container has no terminal to answer Alembic's confirmation prompt.
    params = resolve_cli(service_argv(our_services["migrate"], image)).params
    assert params["no_prompt"] is True
    assert params["revision"] == "head"


def _served_port(params: Mapping[str, Any]) -> int:
    return int(params["port"] or Settings.model_fields["port"].default)


def test_app_listens_where_compose_publishes_it(
    our_services: dict[str, dict[str, Any]], image: Image
) -> None:
    app = our_services["app"]
    params = resolve_cli(service_argv(app, image)).params
    assert params["host"] == "0.0.0.0", "inside a container, 127.0.0.1 is unreachable from outside"
    published = {str(port).rsplit(":", 1)[-1].split("/", 1)[0] for port in app.get("ports", [])}
    assert str(_served_port(params)) in published, f"serves on {params['port']}, publishes {published}"
    assert app.get("restart") in {"always", "unless-stopped", "on-failure"}


def test_services_start_in_order(compose: dict[str, Any], our_services: dict[str, dict[str, Any]]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        if isinstance(depends_on, list):
            depends_on = {dependency: {"condition": "service_started"} for dependency in depends_on}
        for dependency, spec in depends_on.items():
            assert dependency in services, f"{name} depends on an undefined service {dependency}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}'s health"
    assert services["db"]["image"].split(":")[0] == "postgres"
    assert "pg_isready" in as_argv(services["db"]["healthcheck"]["test"])
    assert our_services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert our_services["migrate"].get("restart", "no") == "no", "a one-shot migration must not restart"
    app_depends = our_services["app"]["depends_on"]
    assert app_depends["migrate"]["condition"] == "service_completed_successfully"
    assert app_depends["db"]["condition"] == "service_healthy"


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume_source(volume)
            if source and not source.startswith((".", "/", "~")):
                used.add(source)
    assert used, "no named volumes: the database and var_dir would not survive a container"
    assert used <= declared, f"undeclared named volumes: {sorted(used - declared)}"


def test_compose_environment_is_partnermatch_settings(
    compose: dict[str, Any], our_services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in our_services.items():
        environment = environment_of(service)
        unknown = sorted(set(environment) - SETTINGS_VARIABLES)
        assert not unknown, f"{name}: not PARTNERMATCH_* settings fields: {unknown}"
        assert service.get("env_file") is None, f"{name}: configure with PARTNERMATCH_* in compose.yaml"
        for variable in os.environ:
            if variable.upper().startswith(ENV_PREFIX.upper()):
                monkeypatch.delenv(variable)
        for variable, value in environment.items():
            monkeypatch.setenv(variable, value)
        settings = Settings(_env_file=None)
        assert settings.database_url == environment[f"{ENV_PREFIX}DATABASE_URL"]
        assert not settings.is_sqlite, f"{name}: production runs on PostgreSQL"
        assert str(settings.var_dir) == environment[f"{ENV_PREFIX}VAR_DIR"]
        mounts = {volume_target(volume) for volume in service.get("volumes", [])}
        assert str(settings.var_dir) in mounts, f"{name}: var_dir {settings.var_dir} is not on a volume"

        # The URL reaches the db service with the credentials the postgres image was given.
        url = make_url(settings.database_url)
        assert url.host in compose["services"], f"{name}: database host {url.host} is not a service"
        db = compose["services"][url.host]
        db_environment = environment_of(db)
        assert db["image"].split(":")[0] == "postgres"
        assert url.port in {None, 5432}
        assert url.username == db_environment["POSTGRES_USER"]
        assert url.password == db_environment["POSTGRES_PASSWORD"]
        assert url.database == db_environment.get("POSTGRES_DB", url.username)


def test_healthcheck_requests_a_real_route(
    our_services: dict[str, dict[str, Any]], image: Image, tmp_path: Path
) -> None:
    app_service = our_services["app"]
    test = app_service["healthcheck"]["test"]
    urls = re.findall(r"https?://[^\s'\"]+", test if isinstance(test, str) else " ".join(test))
    assert len(urls) == 1, f"expected one URL in the healthcheck, found {urls}"
    url = urlsplit(urls[0])
    assert url.hostname in {"127.0.0.1", "localhost"}
    served = _served_port(resolve_cli(service_argv(app_service, image)).params)
    assert (url.port or 80) == served, f"the healthcheck asks port {url.port}, the app serves {served}"

    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'routes.db'}", var_dir=tmp_path))
    get_paths = {route.path for route in app.routes if "GET" in getattr(route, "methods", ())}
    assert url.path in get_paths, f"GET {url.path} is not a route; GET routes: {sorted(get_paths)}"


# --- Dockerfile ------------------------------------------------------------------------------------


def test_dockerfile_command_parses_with_the_cli(image: Image) -> None:
    context = resolve_cli(image.argv)
    assert context.command_path == "partnermatch serve"
    assert context.params["host"] == "0.0.0.0", "inside a container, 127.0.0.1 is unreachable from outside"
    assert str(_served_port(context.params)) in image.exposed


def test_dockerfile_copies_the_migrations_where_settings_look(image: Image) -> None:
    # settings.migrations_dir: PARTNERMATCH_MIGRATIONS_DIR, else ./migrations for an installed package.
    migrations_dir = PurePosixPath(image.env.get(f"{ENV_PREFIX}MIGRATIONS_DIR", image.workdir / "migrations"))
    sources = image.copies.get(migrations_dir)
    assert sources is not None, f"nothing is copied to {migrations_dir}; copies: {image.copies}"
    assert [PurePosixPath(source) for source in sources] == [PurePosixPath("migrations")]
    assert (ROOT / "migrations" / "env.py").is_file()


def test_dockerfile_environment_is_valid_settings(image: Image, monkeypatch: pytest.MonkeyPatch) -> None:
    variables = {key: value for key, value in image.env.items() if key.startswith(ENV_PREFIX)}
    assert set(variables) <= SETTINGS_VARIABLES, f"not settings fields: {set(variables) - SETTINGS_VARIABLES}"
    for variable in os.environ:
        if variable.upper().startswith(ENV_PREFIX.upper()):
            monkeypatch.delenv(variable)
    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)
    settings = Settings(_env_file=None)
    for variable, value in variables.items():
        field = variable.removeprefix(ENV_PREFIX).lower()
        assert str(getattr(settings, field)) == value


def test_dockerfile_installs_the_package_as_a_non_root_user(image: Image) -> None:
    runs = [arguments for keyword, arguments in image.all_instructions if keyword == "RUN"]
    installs = [shlex.split(run) for run in runs if re.search(r"\bpip install\b", run)]
    assert any(argv[-1] == "." for argv in installs), f"no `pip install .`: {runs}"
    assert not any("-e" in argv or "--editable" in argv for argv in installs), "an editable install"
    assert image.user not in {"root", "0"}, "the final stage runs as root"

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requires_python = SpecifierSet(project["requires-python"])
    for keyword, arguments in image.all_instructions:
        if keyword == "FROM":
            match = re.match(r"python:(\d+\.\d+)", arguments)
            assert match, f"FROM {arguments}: expected an official python image"
            assert match.group(1) in requires_python, f"FROM {arguments} vs requires-python {requires_python}"


def test_dockerignore_keeps_the_build_context_small_and_complete(
    image: Image, dockerignore: list[str]
) -> None:
    for excluded in [".git", ".venv", "var", ".env", "src/partnermatch/__pycache__/app.cpython-311.pyc"]:
        assert dockerignored(excluded, dockerignore), f".dockerignore lets {excluded} into the build context"
    needed = list(image.context_files())
    assert {"pyproject.toml", "README.md", "migrations/env.py"} <= set(needed)
    ignored = [path for path in needed if dockerignored(path, dockerignore)]
    assert not ignored, f".dockerignore drops files the Dockerfile copies: {ignored}"


def test_the_build_stage_copies_every_package_the_wheel_holds() -> None:
    # A package missing from the build context makes `pip install .` fail inside `docker build` only.
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"][
        "wheel"
    ]["packages"]
    copied = {
        PurePosixPath(source).parts[0]
        for keyword, arguments in dockerfile_instructions(DOCKERFILE.read_text())
        if keyword == "COPY" and not arguments.startswith("--from")
        for source in copy_from_context(arguments)[:-1]
    }
    for package in packages:
        assert PurePosixPath(package).parts[0] in copied, f"the Dockerfile does not copy {package}"
