"""The portal's fixture: a seeded data directory and the app served on loopback."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The tests folders are not packages; let this room's tests import their helper module.
sys.path.insert(0, str(Path(__file__).parent))
from portal_world import World, make_settings, seed

from core.state import StateStore
from portal_api.app import create_app
from portal_api.clients import NewClient, add_client
from portal_api.serve import running
from portal_api.serving import ServingSnapshot


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, NewClient]:
    """Seed once (Parquet snapshots, serving files, a client); each test gets a copy."""
    data_dir = tmp_path_factory.mktemp("portal-template") / "data"
    state = StateStore.open(data_dir)
    seed(data_dir, state)
    client = add_client(state, "city-portal", rate_per_s=1000)
    state.dispose()
    ServingSnapshot(data_dir).refresh()
    return data_dir, client


def _serve_copy(data_dir: Path, template: Path, client: NewClient) -> Iterator[World]:
    settings = make_settings(data_dir)
    shutil.copytree(template, settings.data_dir)
    state = StateStore.open(settings.data_dir)
    app = create_app(settings, follow_snapshots=False)
    app.state.serving.refresh()
    with running(app) as served:
        world = World(settings, state, client, served.url, served)
        yield world
        world.http.close()
    state.dispose()


@pytest.fixture()
def world(tmp_path: Path, seeded_template: tuple[Path, NewClient]) -> Iterator[World]:
    """A world of one's own, for tests that change something (payments, documents, clients)."""
    yield from _serve_copy(tmp_path / "data", *seeded_template)


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory,
                 seeded_template: tuple[Path, NewClient]) -> Iterator[World]:
    """One served world for a module's read-only tests."""
    yield from _serve_copy(tmp_path_factory.mktemp("shared") / "data", *seeded_template)
