"""Which reader folder the ``reader`` setting names (no model is loaded here)."""

from __future__ import annotations

from pathlib import Path

from ingest import SettingsError

MODEL_DIR = Path(__file__).resolve().parent / "model"


def reader_folder(setting: str) -> Path | None:
    """The folder for ``reader`` ('packaged', 'rules' or a path); None for 'rules'. Names the
    setting and the path when the folder holds no reader."""
    value = setting.strip()
    if value == "rules":
        return None
    folder = MODEL_DIR if value == "packaged" else Path(value).expanduser()
    if not (folder / "reader.json").exists():
        raise SettingsError(
            f"reader must be 'packaged', 'rules' or a folder holding reader.json, got "
            f"{setting!r} (no reader.json in {folder})"
        )
    return folder
