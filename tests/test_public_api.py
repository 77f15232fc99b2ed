from __future__ import annotations

import ast
from pathlib import Path

import ingest

ROOT = Path(__file__).resolve().parent.parent


def test_ingest_public_api_is_pinned():
    assert sorted(ingest.__all__) == sorted(
        [
            "EXIT_NOTHING_DONE",
            "EXIT_OK",
            "EXIT_PARTIAL",
            "SUPPORTED_EXTENSIONS",
            "DocIndex",
            "DocLayout",
            "DocRecord",
            "IndexMismatchError",
            "IndexDamagedError",
            "IndexMissingError",
            "IndexUnavailableError",
            "IndexWriteError",
            "IngestError",
            "IngestReport",
            "IngestSettings",
            "LoadError",
            "LoadedDocument",
            "Plan",
            "SettingsError",
            "StoredChunk",
            "ingest_paths",
            "CollectionInfo",
            "UnknownCollectionError",
            "delete_collection",
            "indexed_folders",
            "list_collections",
            "manifest_files",
            "load_document",
            "open_index",
            "read_layout",
            "render_page",
            "reset_index",
            "set_offline_env",
        ]
    )
    for name in ingest.__all__:
        assert hasattr(ingest, name)


def test_chatbot_public_api_is_pinned():
    import chatbot

    assert sorted(chatbot.__all__) == sorted(
        ["Answer", "ChatSettings", "Chatbot", "Citation", "Passage", "QuestionError", "Trace"]
    )
    for name in chatbot.__all__:
        assert hasattr(chatbot, name)


def test_chatbot_web_public_api_is_pinned():
    import chatbot.web

    assert sorted(chatbot.web.__all__) == ["ChatApp", "WebSettings", "build_app", "launch"]
    for name in chatbot.web.__all__:
        assert getattr(chatbot.web, name) is not None


def _imported_modules(path: Path) -> set[str]:
    """Every module a source file imports (at the top, in functions, or for type checking)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _importers(package: Path, forbidden: tuple[str, ...]) -> dict[str, set[str]]:
    out = {}
    for path in sorted(package.rglob("*.py")):
        bad = {
            m
            for m in _imported_modules(path)
            if any(m == f or m.startswith(f + ".") for f in forbidden)
        }
        if bad:
            out[str(path.relative_to(ROOT))] = bad
    return out


def test_one_dependency_direction():
    """ingest <- chatbot <- chatbot.web, ingest <- chatbot <- eval: nothing imports upward."""
    assert _importers(ROOT / "ingest", ("chatbot", "eval")) == {}
    core = {
        k: v
        for k, v in _importers(ROOT / "chatbot", ("chatbot.web", "eval")).items()
        if not k.startswith("chatbot/web/")
    }
    # The entry point launches the web app; no answering module imports it.
    assert set(core) == {"chatbot/__main__.py"}, core
    assert _importers(ROOT / "chatbot" / "web", ("eval",)) == {}
