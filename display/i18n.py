"""Every string a page shows, Ukrainian first, English second."""

from __future__ import annotations

STRINGS: dict[str, dict[str, str]] = {
    "uk": {
        "app_name": "Зала ради",
        "hall": "Екран залу",
        "console": "Пульт секретаря",
        "overlay": "Титри трансляції",
        "public": "Результати голосувань",
        "login": "Вхід",
        "seat": "Віртуальний пульт",
    },
    "en": {
        "app_name": "Council chamber",
        "hall": "Hall screen",
        "console": "Secretary console",
        "overlay": "Stream overlay",
        "public": "Voting results",
        "login": "Log in",
        "seat": "Virtual seat",
    },
}

LANGS: tuple[str, ...] = ("uk", "en")
