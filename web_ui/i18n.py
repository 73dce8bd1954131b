"""Message catalogs (web_ui/locales/*.json) and the visitor's language.

Chinese is the default; a visitor switches with the language button, which stores a cookie.
A key missing from a catalog falls back to the default language, then to the key itself, so a
missing translation shows up as a readable key rather than a crash.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

LOCALES_DIR = Path(__file__).parent / "locales"
LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LANGUAGE_COOKIE = "vk_lang"
_INDEXED_FIELD = re.compile(r"^(?P<list>[a-z_]+)\[(?P<index>\d+)\]\.(?P<field>[a-z_]+)$")


def catalog_files(language: str) -> list[Path]:
    """The shared catalog, then each village service's own (web_ui/village/<name>/locales)."""
    services = sorted((Path(__file__).parent / "village").glob(f"*/locales/{language}.json"))
    return [LOCALES_DIR / f"{language}.json", *services]


@cache
def catalog(language: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in catalog_files(language):
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"{path} must hold one object")
        clash = sorted(set(data) & set(merged))
        if clash:  # a service's key must not silently replace another's
            raise ValueError(f"{path} repeats catalog keys: {', '.join(clash[:5])}")
        merged.update({str(key): str(value) for key, value in data.items()})
    return merged


def pick_language(cookie: str | None, default: str) -> str:
    return cookie if cookie in LANGUAGES else default


@dataclass(frozen=True)
class Translator:
    language: str

    def __call__(self, key: str, **params: object) -> str:
        text = catalog(self.language).get(key)
        if text is None:
            text = catalog(DEFAULT_LANGUAGE).get(key, key)
        return text.format(**params) if params else text

    def has(self, key: str) -> bool:
        return key in catalog(self.language) or key in catalog(DEFAULT_LANGUAGE)

    def field_label(self, field: str, service: str = "") -> str:
        """``companions[0].id_number`` becomes e.g. ``同住人 1 · 证件号码``; a village service's
        own fields are labelled from its catalog (``<service>.field.<name>``) first."""
        if service and self.has(f"{service}.field.{field}"):
            return self(f"{service}.field.{field}")
        match = _INDEXED_FIELD.match(field)
        if match:
            return self(
                f"field.{match['list']}.item",
                number=int(match["index"]) + 1,
                field=self(f"field.{match['field']}"),
            )
        return self(f"field.{field}")

    def error_message(self, code: str, fallback: str = "") -> str:
        """The text for a validation code such as ``id_number.check_digit``."""
        key = f"error.{code}"
        own = catalog(self.language).get(key)
        if own is not None:
            return own
        # The domain's English text beats a Chinese fallback for an English reader.
        if self.language == "en" and fallback:
            return fallback
        if self.has(key):
            return self(key)
        return fallback if self.language == "en" else self("error.invalid")

    def field_error(self, field: str, code: str, fallback: str = "") -> str:
        # A service's codes start with its name ("disputes.description.required").
        service = code.split(".", 1)[0] if "." in code else ""
        return self(
            "error.field_sentence",
            field=self.field_label(field, service),
            message=self.error_message(code, fallback),
        )
