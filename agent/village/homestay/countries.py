"""Nationalities: ISO 3166-1 alpha-3 codes with their Chinese and English names (from the
iso-codes project), so a host may pick "美国" or "United States" and the record keeps USA."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_DATA = Path(__file__).with_name("countries.json")


@dataclass(frozen=True)
class Country:
    code: str
    zh: str
    en: str

    def name(self, language: str) -> str:
        return self.zh if language.startswith("zh") else self.en


@cache
def countries() -> tuple[Country, ...]:
    rows = json.loads(_DATA.read_text(encoding="utf-8"))
    return tuple(Country(code, zh, en) for code, zh, en in rows)


@cache
def _by_name() -> dict[str, str]:
    names: dict[str, str] = {}
    for country in countries():
        names[country.code] = country.code
        names[_fold(country.zh)] = country.code
        names[_fold(country.en)] = country.code
    return names


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def is_code(code: str) -> bool:
    return any(country.code == code for country in countries())


def to_code(text: str) -> str:
    """The alpha-3 code for a code or an exact Chinese or English name (case and spaces
    ignored); other text comes back normalized so the usual checks refuse it."""
    folded = _fold(text)
    code = _by_name().get(folded) or _by_name().get(folded.upper())
    if code is not None:
        return code
    return unicodedata.normalize("NFKC", text).strip().upper()


def name_of(code: str, language: str) -> str:
    for country in countries():
        if country.code == code:
            return country.name(language)
    return code
