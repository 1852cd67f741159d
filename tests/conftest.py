"""Every test runs with its own empty aftercal config folder: the clinic configuration, secret and
Google sign-in of the machine running the tests never leak in."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_config_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.mktemp("aftercal-config")
    monkeypatch.setenv("AFTERCAL_CONFIG_DIR", str(folder))
    for name in ("AFTERCAL_CONFIG", "AFTERCAL_SECRET_FILE", "AFTERCAL_DB", "AFTERCAL_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return folder
