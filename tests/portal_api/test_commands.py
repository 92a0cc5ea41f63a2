"""`amr portal` commands through typer's runner, against a real data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from portal_world import ALICE, KEY, bill_row, publish_bills
from typer.testing import CliRunner

from amr.commands.portal import app
from portal_api import tokens
from portal_api.openapi import openapi_document, render
from portal_api.standin import run_intake_standin

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("AMR_DATA_DIR", str(data_dir))
    monkeypatch.setenv("AMR_PORTAL__SIGNING_KEY", KEY)
    return data_dir


def _commands(typer_app: object, prefix: str = "") -> list[str]:
    import typer.main

    group = typer.main.get_command(typer_app)  # type: ignore[arg-type]
    names = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        if hasattr(command, "commands"):
            names += [f"{prefix}{name} {sub}" for sub in command.commands]
        else:
            names.append(f"{prefix}{name}")
    return names


def test_every_command_has_an_example() -> None:
    names = _commands(app)
    assert {"serve", "publish", "status", "clients add", "login-link", "standin"} <= set(names)
    for name in names:
        result = runner.invoke(app, [*name.split(), "--help"])
        assert result.exit_code == 0, name
        assert "Example: amr portal" in result.output, name


def test_clients_add_prints_the_secret_once_and_list_hides_it(env: Path) -> None:
    added = runner.invoke(app, ["clients", "add", "hanoi-portal", "--json"])
    assert added.exit_code == 0, added.output
    secret = json.loads(added.output)["client_secret"]
    listed = runner.invoke(app, ["clients", "list", "--json"])
    assert "hanoi-portal" in listed.output and secret not in listed.output
    again = runner.invoke(app, ["clients", "add", "hanoi-portal"])
    assert again.exit_code == 1 and "exists already" in again.output


def test_login_link_carries_a_customer_token(env: Path) -> None:
    result = runner.invoke(app, ["login-link", ALICE, "--minutes", "5"])
    assert result.exit_code == 0
    token = result.output.strip().split("#token=", 1)[1]
    assert tokens.verify(KEY.encode(), token, ("customer",)).subject == ALICE
    bad = runner.invoke(app, ["login-link", "PD1"])
    assert bad.exit_code == 1 and "PD1" in bad.output and "hint" in bad.output


def test_publish_then_status(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    publish_bills(env, [bill_row(ALICE, "2026-10")])
    with run_intake_standin(client_secret="cli-secret") as intake:
        for name, value in {"INTAKE_URL": intake.url, "TOKEN_URL": intake.token_url,
                            "CLIENT_ID": intake.client_id, "CLIENT_SECRET": "cli-secret"}.items():
            monkeypatch.setenv(f"AMR_PORTAL__{name}", value)
        published = runner.invoke(app, ["publish", "--json"])
        assert published.exit_code == 0, published.output
        assert json.loads(published.output)["acknowledged"] == 1
    shown = runner.invoke(app, ["status", "--json"])
    body = json.loads(shown.output)
    assert body["counts"]["acknowledged"] == 1 and body["entries"][0]["customer_code"] == ALICE
    assert "cli-secret" not in published.output + shown.output
    wrong = runner.invoke(app, ["status", "--state", "lost"])
    assert wrong.exit_code == 1 and "lost" in wrong.output


def test_publish_without_configuration_says_what_to_set(env: Path) -> None:
    result = runner.invoke(app, ["publish"])
    assert result.exit_code == 1 and "intake_url" in result.output


def test_docs_openapi_json_matches_the_app() -> None:
    kept = (REPO / "docs" / "openapi.json").read_text("utf-8")
    assert kept == render(openapi_document()), "run `amr portal openapi` and commit docs/openapi.json"


def test_serve_refuses_the_placeholder_key_beyond_loopback(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setenv("AMR_DATA_DIR", str(tmp_path / "data"))
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0"])  # noqa: S104 (refused before binding)
    assert result.exit_code == 1 and "signing_key" in result.output
