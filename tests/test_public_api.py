from __future__ import annotations

import ingest


def test_ingest_public_api_is_pinned():
    assert sorted(ingest.__all__) == sorted(
        [
            "EXIT_NOTHING_DONE",
            "EXIT_OK",
            "EXIT_PARTIAL",
            "SUPPORTED_EXTENSIONS",
            "DocIndex",
            "DocRecord",
            "IndexMismatchError",
            "IndexMissingError",
            "IngestError",
            "IngestReport",
            "IngestSettings",
            "LoadError",
            "LoadedDocument",
            "Plan",
            "SettingsError",
            "StoredChunk",
            "ingest_paths",
            "load_document",
            "open_index",
            "reset_index",
            "set_offline_env",
        ]
    )
    for name in ingest.__all__:
        assert hasattr(ingest, name)
