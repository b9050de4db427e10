"""Why a command was refused, in words for the console: Ukrainian and English, one entry per reason code.

The core refuses an input with a stable code (``Rejected.reason``) and an English detail written for
the log; the web layer adds its own codes (``forbidden``, ``bad_command``, ``csrf``, ...).  The secretary
reads a sentence, not a code: ``message(code, lang, **context)`` gives it.  A few sentences carry
numbers (registered of composition, the open microphones' limit) taken from the snapshot by the
caller; a number the caller could not give shows as «?», so the sentence is never lost for it.

``CORE_REASONS`` lists every code the core can produce (``grep -rn 'reject(\\|rejection(' chamber/core``
and the card refusals in ``seat_handlers``); a test checks each of them, and every code here, has both
languages, so a new core code without words fails the tests instead of reaching a page as a bare code.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

#: Every rejection code of chamber.core (a test keeps this list in step with the source).
CORE_REASONS = frozenset(
    {
        "already_queued",
        "bad_duration",
        "bad_limit",
        "bad_proposals",
        "bad_text",
        "card_elsewhere",
        "choice_final",
        "duplicate_event",
        "duplicate_item",
        "impossible_threshold",
        "internal_error",
        "max_mics",
        "no_card",
        "no_presence",
        "no_quorum",
        "no_result",
        "not_a_choice",
        "not_a_voter",
        "not_allowed",
        "not_chair",
        "not_queued",
        "not_secret",
        "not_speaking",
        "nothing_to_annul",
        "nothing_to_seal",
        "queue_empty",
        "queue_unreachable",
        "reason_required",
        "registration_not_open",
        "seal_mismatch",
        "seat_offline",
        "speaking",
        "unknown_card",
        "unknown_deputy",
        "unknown_item",
        "unknown_seat",
        "unknown_vote",
        "vote_not_open",
        "wrong_seat",
    }
)

#: Codes of the web layer itself (commands.py, auth.py, app.py).
WEB_REASONS = frozenset(
    {
        "forbidden",
        "bad_command",
        "bad_agenda",
        "too_long",
        "bad_login",
        "csrf",
        "rate_limited",
        "not_logged_in",
        "unknown_alert",
        "engine_error",
        "timeout",
        "read_only",
        "replayed",
    }
)

# (uk, en).  Fields in braces are filled from the context the caller gives (see ``message``).
MESSAGES: dict[str, tuple[str, str]] = {
    # --- the core -----------------------------------------------------------------------------------
    "already_queued": ("Цей пульт уже в черзі на виступ", "This seat is already in the speakers' queue"),
    "bad_duration": ("Неприпустима тривалість голосування (0…3600 с)", "Vote duration must be 0…3600 s"),
    "bad_limit": ("Неприпустимий регламент виступу (1 с … 4 год)", "Speech time must be between 1 s and 4 h"),
    "bad_proposals": (
        "Рейтингове голосування має 2–9 пропозицій; інші види — жодної",
        "A rating vote needs 2 to 9 proposals; other kinds take none",
    ),
    "bad_text": (
        "Текст містить недопустимі символи (керівні, розриви рядка, зміна напрямку письма)",
        "The text contains characters that cannot be shown (control characters, line breaks, bidi overrides)",
    ),
    "card_elsewhere": ("Картка депутата вже вставлена в інший пульт", "The deputy's card is active at another seat"),
    "choice_final": ("Голос уже враховано, змінювати не можна", "The choice was made and may not change"),
    "duplicate_event": ("Цю подію пульта вже враховано", "This console event was taken already"),
    "duplicate_item": ("Номери питань порядку денного повторюються", "Agenda item numbers must be unique"),
    "impossible_threshold": (
        "Такої більшості неможливо досягти за цього складу ради",
        "No vote can ever meet this threshold with this composition",
    ),
    "internal_error": (
        "Внутрішня помилка системи; команду не виконано, повідомте адміністратора",
        "Internal error; the command was not carried out, tell the administrator",
    ),
    "max_mics": (
        "Уже ввімкнено найбільшу дозволену кількість мікрофонів ({max_open_mics})",
        "The most microphones the rules allow are open already ({max_open_mics})",
    ),
    "no_card": ("У пульті немає картки", "No card in the seat"),
    "no_presence": ("Датчик присутності на місці не активний", "The seat's presence sensor is not held"),
    "no_quorum": (
        "Немає кворуму: зареєстровано {registered} із {composition}, потрібно {needed}",
        "No quorum: {registered} registered of {composition}, {needed} needed",
    ),
    "no_result": (
        "Результату ще немає (підсумок таємного голосування не запечатано)",
        "The vote has no result yet (the secret tally is not sealed)",
    ),
    "not_a_choice": ("Ця клавіша не є варіантом у цьому голосуванні", "That key is not a choice in this vote"),
    "not_a_voter": ("Цей депутат не має права голосу", "This deputy does not vote"),
    "not_allowed": ("Ця дія зараз недоступна (етап: {phase})", "Not allowed now (phase: {phase})"),
    "not_chair": ("Лише для пульта головуючого", "Works only on the chair's console"),
    "not_queued": ("Цього пульта немає в черзі", "This seat is not in the queue"),
    "not_secret": ("Прихований вибір поза таємним голосуванням", "A hidden choice outside a secret vote"),
    "not_speaking": ("Цей пульт зараз не має слова", "This seat does not have the floor"),
    "nothing_to_annul": ("Немає незавершеного таємного голосування", "No unfinished secret vote"),
    "nothing_to_seal": ("Немає таємного голосування, що чекає підсумку", "No secret vote is awaiting its tally"),
    "queue_empty": ("Черга на виступ порожня", "Nobody is waiting for the floor"),
    "queue_unreachable": (
        "Усі пульти в черзі не на зв'язку",
        "Every seat waiting for the floor is offline",
    ),
    "reason_required": ("Потрібно вказати причину", "A reason is required"),
    "registration_not_open": ("Реєстрацію не відкрито", "Registration is not open"),
    "seal_mismatch": (
        "Запечатаний підсумок не збігається з кількістю бюлетенів",
        "The sealed counts do not match the ballots cast",
    ),
    "seat_offline": ("Пульт не на зв'язку", "The seat's console is offline"),
    "speaking": ("Цей пульт уже має слово", "This seat already has the floor"),
    "unknown_card": ("Картку не розпізнано", "Unknown card"),
    "unknown_deputy": ("Немає такого депутата", "No such deputy"),
    "unknown_item": ("Немає такого питання порядку денного", "No such agenda item"),
    "unknown_seat": ("Немає такого місця в залі", "No such seat in this chamber"),
    "unknown_vote": ("Немає завершеного голосування з таким номером", "No finished vote with that number"),
    "vote_not_open": ("Голосування не відкрите", "No vote is open"),
    "wrong_seat": ("Депутат сидить на іншому місці", "The deputy's assigned seat is another one"),
    # --- the web layer ----------------------------------------------------------------------------
    "forbidden": ("Ваша роль ({role}) не дозволяє цю дію", "Your role ({role}) may not do this"),
    "bad_command": ("Неправильна команда: {why}", "Malformed command: {why}"),
    "bad_agenda": ("Порядок денний не імпортовано: {why}", "The agenda was not imported: {why}"),
    "too_long": ("Задовгий текст: {why}", "Text too long: {why}"),
    "bad_login": ("Невірне ім'я або пароль", "Wrong user name or password"),
    "csrf": (
        "Сторінка застаріла (немає або невірний ключ захисту); оновіть її",
        "The page is out of date (CSRF token missing or wrong); reload it",
    ),
    "rate_limited": (
        "Забагато невдалих спроб входу; спробуйте через {retry_after} с",
        "Too many failed log-in attempts; try again in {retry_after} s",
    ),
    "not_logged_in": ("Потрібно увійти", "Please log in"),
    "unknown_alert": ("Немає такої тривоги", "No such alert"),
    "engine_error": (
        "Команду не записано в журнал, тож її не виконано: {why}",
        "The command could not be journaled, so it was not carried out: {why}",
    ),
    "timeout": (
        "Система не відповіла вчасно; перевірте стан, перш ніж повторювати",
        "The system did not answer in time; check the state before repeating",
    ),
    "read_only": ("Ця сторінка лише для перегляду", "This page is read-only"),
    "replayed": (
        "Цю команду вже надіслано і вона ще виконується: {why}",
        "This command was sent already and is still being carried out: {why}",
    ),
}

_FIELDS = string.Formatter()

# The web layer's own ``why`` (display.commands, display.namespaces, display.scaleout) is English, for the log;
# where a sentence shows it («Неправильна команда: {why}»), the Ukrainian one gets it in Ukrainian.
# One pattern per text those modules write (tests/test_web_commands.py sends each and checks that none
# is left in English); msgspec's own errors (a field of the wrong type) are read too.
_Q = r"[`'\"]?"
WHY_UK: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), uk)
    for pattern, uk in (
        (r"^not JSON: (.*)$", r"текст команди не є JSON (\1)"),
        (r"^a command is a JSON object, got (\w+)$", r"команда — це об'єкт JSON, а надійшов \1"),
        (r'^a command needs a "type" \(a string\)$', "у команди немає поля «type» (рядка)"),
        (
            r"^(\w+) comes only from the seat consoles or the engine, never from the web$",
            r"\1 надходить лише від пультів депутатів або від самої системи, ніколи з вебсторінки",
        ),
        (r"^unknown command type (.*)$", r"невідомий вид команди \1"),
        (r"^([\w.\[\]]+): (\d+) characters, at most (\d+)$", r"\1: символів \2, можна не більше \3"),
        (r"^([\w.]+): (\d+) agenda items, at most (\d+)$", r"\1: пунктів порядку денного \2, можна не більше \3"),
        (r"^(\w+) has no field\(s\) (.*)$", r"у команди \1 немає полів \2"),
        (
            r"^OpenSitting takes its roster from config\.toml, not from the command$",
            "склад ради для OpenSitting береться з config.toml, не з команди",
        ),
        (r"^the agenda CSV is larger than (\d+) KiB$", r"файл більший за \1 КіБ"),
        (r"^agenda CSV: (.*)$", r"CSV не читається (\1)"),
        (r"^agenda CSV line (\d+): needs a number and a title$", r"у рядку \1 потрібні номер і назва питання"),
        (
            r"^agenda CSV line (\d+): only number, title and draft$",
            r"у рядку \1 забагато стовпців: лише номер, назва і номер проєкту рішення",
        ),
        (r"^more than (\d+) agenda items$", r"понад \1 питань"),
        (r"^the agenda CSV holds no items$", "у тексті немає жодного питання"),
        (r"^the packet's JSON does not parse: (.*)$", r"JSON пакета не читається (\1)"),
        (r"^an event is a JSON array starting with its name$", "подія — це масив JSON, що починається з її назви"),
        (r"^malformed packet$", "пакет пошкоджено"),
        (r"^the event name (.*) is reserved$", r"назва події \1 зарезервована"),
        (r"^no event (.*) on (/\w+)$", r"на \2 немає події \1"),
        (
            r"^a command_id is 1 to 64 letters, digits, '-' or '_'$",
            "command_id — це від 1 до 64 літер, цифр, «-» або «_»",
        ),
        (r"^command (\S+) is being carried out$", r"команда \1 виконується"),
        (r"^the message queue cannot be reached: (.*)$", r"черга повідомлень (Redis) недоступна (\1)"),
        # msgspec's validation errors: "Expected `int`, got `str` - at `$.duration_s`"
        (
            rf"^Expected {_Q}([^`'\"]+){_Q}, got {_Q}([^`'\"]+){_Q} - at `\$\.?([^`]*)`$",
            r"поле «\3»: очікується \1, надійшло \2",
        ),
        (rf"^Expected {_Q}([^`'\"]+){_Q} (.+) - at `\$\.?([^`]*)`$", r"поле «\3»: очікується \1 \2"),
        (rf"^Object missing required field {_Q}([^`'\"]+){_Q}(?: - at `\$\.?([^`]*)`)?$", r"бракує поля «\1» \2"),
        (rf"^Object contains unknown field {_Q}([^`'\"]+){_Q}(?: - at `\$\.?([^`]*)`)?$", r"зайве поле «\1» \2"),
        (r"^Invalid enum value (.+) - at `\$\.?([^`]*)`$", r"поле «\2»: неприпустиме значення \1"),
        (r"^Invalid value (.+) - at `\$\.?([^`]*)`$", r"поле «\2»: неприпустиме значення \1"),
        # chamber.core.threshold's own check, as msgspec passes it on
        (
            r"^threshold fraction must satisfy 0 < p <= q, got (\S+)(?: - at `\$\.?([^`]*)`)?$",
            r"частка порогу має бути більшою за 0 і не більшою за 1, а надійшло \1",
        ),
    )
)


def why_uk(why: str) -> str:
    """The web layer's English ``why`` in Ukrainian; text no pattern reads is marked as English (an
    exception's own message, say, which nobody can translate ahead of time)."""
    for pattern, uk in WHY_UK:
        match = pattern.match(why)
        if match is not None:
            return match.expand(uk).rstrip()
    return f"подробиці англійською: {why}" if why else ""


class _Context(dict[str, object]):
    """Format context whose missing fields read as ``?`` (a sentence is never lost for one number)."""

    def __missing__(self, key: str) -> str:
        return "?"


def message(code: str, lang: str, context: Mapping[str, object] | None = None) -> str:
    """The sentence for ``code`` in ``lang`` ("uk" or "en"; anything else is Ukrainian)."""
    uk, en = MESSAGES.get(code, ("Команду відхилено ({code})", "Command refused ({code})"))
    text = en if lang == "en" else uk
    ctx = _Context(context or {})
    ctx.setdefault("code", code)
    why = ctx.get("why")
    if lang != "en" and isinstance(why, str):
        ctx["why"] = why_uk(why)
    return text.format_map(ctx)


def fields(code: str) -> set[str]:
    """The context fields a code's sentences use (for tests and callers that fill them)."""
    names: set[str] = set()
    for text in MESSAGES.get(code, ()):
        names.update(name for _, name, _, _ in _FIELDS.parse(text) if name)
    return names
