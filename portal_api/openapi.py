"""The API's OpenAPI description, as kept in `docs/openapi.json` (a test checks they match)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from core.config import Settings
from portal_api.app import create_app


def openapi_document() -> dict[str, Any]:
    """The description of the app; independent of any installation's data and settings."""
    with tempfile.TemporaryDirectory(prefix="amr-openapi-") as scratch:
        app = create_app(Settings(data_dir=Path(scratch)), follow_snapshots=False)
        app.state.state_store.dispose()
        return app.openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_openapi(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(openapi_document()), encoding="utf-8")
    return path
