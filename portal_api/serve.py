"""Running the app: in the foreground for `amr portal serve`, or in a thread for tests and demos."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from core.config import PortalSettings, Settings, load_settings
from portal_api.app import create_app
from portal_api.errors import NotConfigured

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def app_from_environment() -> FastAPI:
    """The factory each uvicorn worker process calls (settings from amr.toml and AMR_*)."""
    return create_app(load_settings())


def serve(settings: Settings, *, workers: int = 1, access_log: bool = False) -> None:
    """Serve until interrupted. With several workers each process follows the snapshots itself."""
    placeholder = PortalSettings.model_fields["signing_key"].default.get_secret_value()
    if settings.portal.signing_key.get_secret_value() == placeholder and settings.portal.host not in LOOPBACK:
        raise NotConfigured(
            f"portal.signing_key is still the placeholder, and {settings.portal.host} is not loopback",
            hint="set a long random portal.signing_key in amr.toml (or AMR_PORTAL__SIGNING_KEY)",
        )
    if workers == 1:
        uvicorn.run(create_app(settings), host=settings.portal.host, port=settings.portal.port,
                    access_log=access_log, log_level="warning")
        return
    # Worker processes rebuild the app from the environment: pass the data directory on.
    os.environ["AMR_DATA_DIR"] = str(settings.data_dir)
    os.environ["AMR_BUCKETS"] = str(settings.buckets)
    uvicorn.run("portal_api.serve:app_from_environment", factory=True, host=settings.portal.host,
                port=settings.portal.port, workers=workers, access_log=access_log, log_level="warning")


@dataclass(frozen=True)
class Running:
    url: str
    app: FastAPI


@contextmanager
def running(app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[Running]:
    """Serve `app` from a thread. The socket listens before the thread starts, so clients
    may connect at once (their connections wait in the backlog until uvicorn accepts)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="portal-server",
                              daemon=True)
    thread.start()
    try:
        yield Running(url=f"http://{host}:{sock.getsockname()[1]}", app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
