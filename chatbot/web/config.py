"""The web app's settings: where it listens, who may log in, where uploads, conversations
and saved eval cases go, and the chatbot's settings it answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chatbot.config import ChatSettings
from chatbot.conversations import default_path
from ingest import SettingsError
from ingest.config import PROJECT_ROOT
from ingest.settings import EnvSettings
from ingest.settings import described as _field


@dataclass(frozen=True)
class WebSettings(EnvSettings):
    """Every knob of the web app (``python -m chatbot``); ``DOCQA_<FIELD>`` overrides each."""

    chat: ChatSettings = field(
        default_factory=ChatSettings,
        metadata={"description": "How questions are answered (and the index they read)."},
    )
    host: str = _field("127.0.0.1", "Address the web app binds to.")
    port: int = _field(7860, "Port the web app listens on.")
    login_user: str = _field("", "Web app login user name (empty: no login).")
    login_password: str = _field("", "Web app login password (set with login_user).")
    users_file: str = _field(
        "",
        "Users file (accounts with roles and API keys; `python -m chatbot adduser` writes it). "
        "Empty: no accounts, one shared login at most (login_user).",
    )
    login_max_failures: int = _field(
        5, "Failed logins for one user name or address before further logins are refused."
    )
    login_window_s: float = _field(
        300.0, "Seconds failed logins are counted over, and a refused login waits at most."
    )
    api_keys: str = _field(
        "",
        "Comma-separated keys the API (/v1/*, /api/answer) requires as 'Authorization: Bearer "
        "KEY' (empty: the API is open, unless there is a login, which closes it). With "
        "accounts, users' own keys work too.",
    )
    docs_dir: Path = _field(
        PROJECT_ROOT / "documents", "Folder where documents uploaded in the web app are saved."
    )
    watch_documents: bool = _field(
        True,
        "Watch docs_dir: files copied into it, edited, renamed or removed are reingested "
        "within seconds, without an upload or a restart.",
    )
    max_upload_mb: float = _field(20.0, "Largest file (MB) the web app accepts as an upload.")
    eval_cases_file: Path = _field(
        PROJECT_ROOT / "eval" / "sets" / "from_chat.jsonl",
        "JSONL file the web app appends an eval case to when feedback on an answer is saved.",
    )
    conversations_db: str = _field(
        "",
        "SQLite file of saved conversations and feedback (empty: INDEX_DIR/conversations.sqlite3).",
    )

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"port must be between 1 and 65535, got {self.port}")
        if not self.host.strip():
            raise SettingsError(f"host must not be empty, got {self.host!r}")
        if bool(self.login_user) != bool(self.login_password):
            raise SettingsError(
                "login_user and login_password must be set together, got "
                f"user {self.login_user!r} and {'a' if self.login_password else 'no'} password"
            )
        if self.users_file and self.login_user:
            raise SettingsError(
                "set users_file (accounts) or login_user (one shared login), not both: got "
                f"users_file {self.users_file!r} and login_user {self.login_user!r}"
            )
        if self.login_max_failures < 1 or self.login_window_s <= 0:
            raise SettingsError(
                "login_max_failures must be at least 1 and login_window_s positive, got "
                f"{self.login_max_failures} and {self.login_window_s}"
            )
        if self.max_upload_mb <= 0:
            raise SettingsError(f"max_upload_mb must be positive, got {self.max_upload_mb}")
        object.__setattr__(self, "docs_dir", Path(self.docs_dir).expanduser())
        object.__setattr__(self, "eval_cases_file", Path(self.eval_cases_file).expanduser())

    @property
    def conversations_path(self) -> Path:
        return default_path(self.chat.index.index_dir, self.conversations_db)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
