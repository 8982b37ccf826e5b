"""SPEC §13 reproducible builds: the lock files pin every dependency with hashes, and the README's commands,
the Dockerfile and the compose file install and check what they should. (No Docker engine here: the files
are parsed and checked, not built.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PINNED = re.compile(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", re.M)


def _pins(name: str) -> dict[str, str]:
    text = (ROOT / "requirements" / name).read_text()
    blocks = re.split(r"\n(?=[A-Za-z])", text)
    for block in blocks:
        if PINNED.match(block):
            assert "--hash=sha256:" in block, block  # every pin carries its hashes
    return {m.group(1).lower().replace("_", "-"): m.group(2) for m in PINNED.finditer(text)}


def _names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower().replace("_", "-") for r in requirements}


def test_the_lock_files_pin_every_dependency_the_project_names_at_uv_lock_versions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    locked = {
        p["name"]: p["version"]
        for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]
        if p["name"] != "roster"
    }
    main, test = _pins("main.txt"), _pins("test.txt")
    build = _names(project["dependency-groups"]["build"])
    assert _names(project["project"]["dependencies"]) | build <= set(main)
    assert _names(project["project"]["optional-dependencies"]["test"]) | set(main) <= set(test)
    assert all(locked[name] == version for name, version in test.items())
    # pyproject keeps ranges for those who install Roster as a library.
    assert not any("==" in r for r in project["project"]["dependencies"])


def _readme_command(marker: str) -> str:
    readme = (ROOT / "README.md").read_text()
    block = readme.split(f"<!-- {marker}:start -->")[1].split(f"<!-- {marker}:end -->")[0]
    return next(line for line in block.splitlines() if line and not line.startswith("```"))


def test_the_readme_commands_install_from_the_lock_files():
    for marker, lock in (("run-command", "requirements/main.txt"), ("test-command", "requirements/test.txt")):
        command = _readme_command(marker)
        assert f"--require-hashes -r {lock}" in command and "--no-deps --no-build-isolation" in command


def test_the_image_installs_the_locked_dependencies_before_the_source_on_patch_versioned_bases():
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert bases and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", b) for b in bases)
    order = [
        i
        for i, line in enumerate(lines)
        if line.startswith(
            ("COPY requirements/main.txt", "RUN /opt/roster/bin/pip install --require-hashes", "COPY src")
        )
    ]
    assert len(order) == 3 and order == sorted(order)
    assert any("--no-deps --no-build-isolation" in line for line in lines)


def test_compose_checks_workers_with_roster_worker_check_and_names_patch_versions():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "roster", "worker", "--check"]
    assert "--metrics-port" in services["worker"]["command"]
    assert re.fullmatch(r"postgres:\d+\.\d+(-\w+)?", services["postgres"]["image"])
