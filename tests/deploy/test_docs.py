"""docs/deploy.md's configuration reference says what the settings classes have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from janitor_auto_upload.settings import AutoUploadSettings
from janitor_bzr_store.settings import BzrStoreSettings
from janitor_common.config import CommonSettings
from janitor_differ.settings import DifferSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def documented(cls: type[BaseSettings]) -> dict[str, str]:
    """setting -> documented default, from the table under the heading naming ``cls``."""
    text = DOC.read_text()
    section = re.search(rf"^### .*\(`{cls.__name__}`\)\n(.*?)(?=^#|\Z)", text, re.M | re.S)
    assert section is not None, f"no section for {cls.__name__}"
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]*?) \|", section.group(1), re.M)
    return {name: default.strip("` ") for name, default in rows}


def shown(default: object) -> str:
    if default is PydanticUndefined:
        return "required"
    if default is None:
        return "none"
    return str(default)


def own_fields(cls: type[BaseSettings]) -> dict[str, str]:
    common = CommonSettings.model_fields
    return {
        name: shown(field.default)
        for name, field in cls.model_fields.items()
        if cls is CommonSettings or name not in common or field.default != common[name].default
    }


@pytest.mark.parametrize("cls", [CommonSettings, BzrStoreSettings, DifferSettings, AutoUploadSettings])
def test_reference_matches_settings(cls: type[BaseSettings]) -> None:
    assert documented(cls) == own_fields(cls)
