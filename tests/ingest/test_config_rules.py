"""VEE thresholds can be set by name in amr.toml's [ingest.rules]; a wrong name or type is refused."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.config import load_settings
from ingest.config import VeeConfig
from ingest.errors import IngestError


def test_rules_from_amr_toml_reach_the_vee_config(tmp_path: Path) -> None:
    (tmp_path / "amr.toml").write_text(
        "[ingest.rules]\nspike_history_factor = 8\nhigh_usage_factor = 2.5\n"
        "quarantine_clock_invalid = false\n"
    )
    config = VeeConfig.from_settings(load_settings())
    assert config.spike_history_factor == 8
    assert config.high_usage_factor == Decimal("2.5")
    assert config.quarantine_clock_invalid is False
    assert config.history_days == VeeConfig().history_days


@pytest.mark.parametrize(
    ("rules", "problem"),
    [({"spike_factor": 3}, "not a VEE setting"), ({"history_days": 1.5}, "whole number"),
     ({"quarantine_clock_invalid": 1}, "true or false")],
)
def test_bad_rules_name_the_setting(rules: dict[str, object], problem: str) -> None:
    with pytest.raises(IngestError) as info:
        VeeConfig.from_settings(load_settings(ingest={"rules": rules}))
    assert problem in str(info.value) and next(iter(rules)) in str(info.value)
