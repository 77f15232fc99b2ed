"""The plumbing every package's settings share: described fields, ``replace`` that ignores
``None``, and ``from_env``: defaults, then ``<PREFIX><FIELD>`` variables, then overrides.

Each package's ``config.py`` declares its own frozen dataclass on ``EnvSettings`` and keeps
its own fields, checks and prefix; this module only reads and merges values.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

ENV_PREFIX = "DOCQA_"


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names it."""


def described(default: Any, description: str) -> Any:
    """A dataclass field with a default and the description every settings field carries."""
    return dataclasses.field(default=default, metadata={"description": description})


class EnvSettings:
    """Mixin for a frozen settings dataclass: ``replace`` and ``from_env``.

    A field whose default is a settings class (``default_factory``) is nested settings, e.g.
    the chatbot's ``index``: ``from_env`` reads it from the same environment unless it is
    passed in, and never reads a ``<PREFIX><FIELD>`` variable for it.
    """

    env_prefix: ClassVar[str] = ENV_PREFIX

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (None values are ignored)."""
        clean = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **clean)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Defaults, then ``<PREFIX><FIELD>`` variables, then explicit overrides (e.g. CLI
        flags; None values are ignored)."""
        merged = env_overrides(cls, environ, cls.env_prefix)
        for f in dataclasses.fields(cls):
            factory = f.default_factory
            if overrides.get(f.name) is None and isinstance(factory, type):
                if issubclass(factory, EnvSettings):
                    merged[f.name] = factory.from_env(environ)
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**merged)


def env_overrides(
    cls: type, environ: Mapping[str, str] | None = None, prefix: str = ENV_PREFIX
) -> dict[str, Any]:
    """Read ``<prefix><FIELD>`` variables for the fields of a settings dataclass, typed like
    each field's default (fields without a plain default are skipped)."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = prefix + f.name.upper()
        if key not in env or f.default is dataclasses.MISSING:
            continue
        out[f.name] = parse_value(key, env[key], type(f.default))
    return out


def parse_value(name: str, raw: str, kind: type) -> Any:
    """Convert a string setting to the type of its default, naming it when that fails."""
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if issubclass(kind, Path):
            return Path(raw)
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a {kind.__name__}, got {raw!r}") from None
