"""Configuration: `amr.toml` in the working directory (or `AMR_CONFIG`), then `AMR_*`
environment variables, which win. Nested settings use a double underscore:
`AMR_PORTAL__INTAKE_URL=...`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from core.errors import ConfigError


class HeadendSettings(BaseModel):
    concurrency: int = Field(default=512, ge=1, description="sessions in flight at most")
    per_line: int = Field(default=1, ge=1, description="sessions at once on one serial bus or gateway")
    session_timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=3, ge=0)
    backoff_s: float = Field(default=1.0, ge=0)
    clock_threshold_s: int = Field(default=10, ge=1)
    max_clock_corrections_per_day: int = Field(default=2, ge=0, description="automatic corrections per meter")
    per_cell: int = Field(default=64, ge=1, description="sessions at once through one GPRS cell")
    breaker_threshold: int = Field(default=5, ge=1, description="failed rounds before a meter is rested")
    breaker_cooldown_s: int = Field(default=3600, ge=1, description="first rest; doubles up to a day")
    key_file: Path | None = Field(default=None, description="meter key store (mode 0600)")
    lock_ttl_s: int = Field(default=60, ge=3, description="scheduler lease; renewed every third of it")
    standby_retry_s: float = Field(default=5.0, gt=0, description="how often a standby tries the lock")
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop", description="polling's event loop (uvloop: less CPU per meter; see headend/loop.py)"
    )


class IngestSettings(BaseModel):
    interpolate_max_minutes: int = Field(default=120, ge=0)
    sum_check_tolerance: str = "0.02"
    # Any other VEE threshold by its name in ingest.config.VeeConfig, e.g.
    # [ingest.rules] spike_history_factor = 8 (checked when ingest starts; see docs/ingest.md)
    rules: dict[str, str | int | float | bool] = Field(default_factory=dict)


class BillingSettings(BaseModel):
    reading_day: int = Field(default=0, ge=0, le=31, description="0 means the month's end")
    invoice_template: str = "1"
    invoice_series: str = "K{yy}EAA"


class PortalSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    intake_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: str | None = None
    signing_key: SecretStr = SecretStr("change-me-in-amr.toml")
    public_url: str = "http://127.0.0.1:8080"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AMR_", env_nested_delimiter="__", extra="forbid", toml_file="amr.toml"
    )

    data_dir: Path = Path("amr-data")
    buckets: int = Field(default=16, ge=1, le=4096, description="meter shards; fixed per installation")
    headend: HeadendSettings = HeadendSettings()
    ingest: IngestSettings = IngestSettings()
    billing: BillingSettings = BillingSettings()
    portal: PortalSettings = PortalSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("AMR_CONFIG", "amr.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )


def load_settings(**overrides: Any) -> Settings:
    """Settings from file and environment, with explicit overrides (CLI options) on top."""
    config_path = os.environ.get("AMR_CONFIG")
    if config_path and not Path(config_path).is_file():
        raise ConfigError(f"AMR_CONFIG names {config_path}, which is not a file")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(
            f"configuration is invalid: {problems}",
            hint="check amr.toml and the AMR_* environment variables",
        ) from exc
    except Exception as exc:  # a malformed TOML file: tomllib's error names line and column
        if type(exc).__name__ == "TOMLDecodeError":
            raise ConfigError(f"amr.toml is not valid TOML: {exc}") from exc
        raise
