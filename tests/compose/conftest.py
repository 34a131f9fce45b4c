"""Compose tier: the real image under docker compose.

With no Docker engine the tier fails when CI=true (CI must run it) and is skipped elsewhere;
`pytest -m "not compose"` leaves it out explicitly."""
from __future__ import annotations

import os
from typing import Any, Generator, Iterator

import docker
import pytest

from .helpers import IMAGE, Project, build_image


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        project = getattr(item, "funcargs", {}).get("project")
        if isinstance(project, Project):
            report.sections.append(("containers (last 40 lines each)", project.logs()))


@pytest.fixture(scope="session")
def client() -> docker.DockerClient:
    try:
        engine = docker.from_env(timeout=300)
        engine.ping()
    except Exception as exc:  # noqa: BLE001
        message = f"the compose tier needs a Docker engine and none answered: {exc}"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return engine


@pytest.fixture(scope="session")
def image(client: docker.DockerClient) -> str:
    build_image()
    return IMAGE


@pytest.fixture(scope="module")
def project(client: docker.DockerClient, image: str) -> Iterator[Project]:
    proj = Project(client)
    with proj.up(healthy_timeout=240, first_write_timeout=240, interval=0.2):
        yield proj
