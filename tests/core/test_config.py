from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import ConfigError


def test_defaults_without_file_or_environment() -> None:
    settings = load_settings()
    assert settings.data_dir == Path("amr-data") and settings.buckets >= 1


def test_file_then_environment_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "amr.toml").write_text('buckets = 32\n[portal]\nport = 9000\n')
    assert load_settings().buckets == 32
    monkeypatch.setenv("AMR_PORTAL__PORT", "9100")
    assert load_settings().portal.port == 9100
    assert load_settings(data_dir=tmp_path / "x").data_dir == tmp_path / "x"


def test_invalid_value_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "amr.toml").write_text("buckets = 0\n")
    with pytest.raises(ConfigError, match="buckets"):
        load_settings()


def test_unknown_setting_is_refused(tmp_path: Path) -> None:
    (tmp_path / "amr.toml").write_text("bukets = 4\n")
    with pytest.raises(ConfigError, match="bukets"):
        load_settings()


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "amr.toml").write_text("buckets = = 4\n")
    with pytest.raises(ConfigError, match="TOML"):
        load_settings()


def test_secrets_do_not_print(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMR_PORTAL__CLIENT_SECRET", "s3cr3t-value")
    assert "s3cr3t-value" not in repr(load_settings())
