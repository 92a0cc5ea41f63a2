"""The portal's fixture: a seeded data directory and the app served on loopback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The tests folders are not packages; let this room's tests import their helper module.
sys.path.insert(0, str(Path(__file__).parent))
from portal_world import World, make_settings, seed

from core.state import StateStore
from portal_api.app import create_app
from portal_api.clients import add_client
from portal_api.serve import running


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    settings = make_settings(tmp_path / "data")
    state = StateStore.open(settings.data_dir)
    seed(settings.data_dir, state)
    client = add_client(state, "city-portal", rate_per_s=1000)
    app = create_app(settings, follow_snapshots=False)
    app.state.serving.refresh()
    with running(app) as served:
        yield World(settings, state, client, served.url, served)
    state.dispose()
