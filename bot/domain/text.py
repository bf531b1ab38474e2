"""User-typed text: what counts as empty, what is never kept, how much is repeated back.

A field that shows nothing to a reader (only spaces, zero-width characters, direction marks)
is empty, whatever its length in code points. Bidirectional controls are removed from every
field kept or shown, since they can make a reason or a title read differently from what it
says. Anything repeated back to the user is clipped, so an oversized input stays bounded.
"""

import re
import unicodedata

from bot.domain.errors import InvalidInput

BIDI_CONTROLS = frozenset(
    "\u061c"  # Arabic letter mark
    "\u200e\u200f"  # left-to-right and right-to-left marks
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings, pop, overrides
    "\u2066\u2067\u2068\u2069"  # isolates
)
# Invisible characters that mean nothing at either end of a field (inside, a joiner may be
# part of an emoji, so only the ends are trimmed).
_EDGES = re.compile(r"^[\s\u200b\u200c\u200d\u2060\ufeff]+|[\s\u200b\u200c\u200d\u2060\ufeff]+$")
_KEPT_CONTROLS = frozenset("\n\t")
ECHO_LIMIT = 80
"""Characters of user input repeated back in a message, ellipsis included."""


# Letters and symbols that render as blank space yet are neither whitespace nor format
# characters: Hangul fillers and the blank Braille pattern.
BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def visible(text: str) -> str:
    """What a reader sees of `text`: without format characters (Unicode category Cf: zero-width
    spaces and joiners, byte order marks, bidirectional controls), characters that render as
    blanks, and surrounding whitespace."""
    return "".join(
        c for c in text if unicodedata.category(c) != "Cf" and c not in BLANK_LOOKING
    ).strip()


def clean(text: str) -> str:
    """`text` as it is kept and shown: no bidirectional controls, no control characters other
    than newline and tab, no whitespace or zero-width characters at either end."""
    kept = "".join(
        c
        for c in text
        if c not in BIDI_CONTROLS and (c in _KEPT_CONTROLS or unicodedata.category(c) != "Cc")
    )
    return _EDGES.sub("", kept)


def required_text(text: str, *, field: str, max_length: int) -> str:
    """A required user-typed field, cleaned; refused, naming the field, when nothing of it is
    visible or when it is longer than `max_length`."""
    cleaned = clean(text)
    if not visible(cleaned):
        raise InvalidInput(f"The {field} cannot be empty: write a few words a reader can see.")
    if len(cleaned) > max_length:
        raise InvalidInput(
            f"The {field} is {len(cleaned)} characters long; the limit is {max_length}."
        )
    return cleaned


def optional_text(text: str | None, *, field: str, max_length: int) -> str | None:
    """An optional field: None when nothing of it is visible, else as `required_text`."""
    if text is None or not visible(text):
        return None
    return required_text(text, field=field, max_length=max_length)


def echo(text: str, limit: int = ECHO_LIMIT) -> str:
    """User input as repeated back in a message: cleaned and at most `limit` characters."""
    shown = clean(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


_ID_CHARACTERS = re.compile(r"[A-Za-z0-9-]+")


def shown_id(text: str, *, length: int) -> str | None:
    """An id as typed, for a message, when it could be one (letters, digits and hyphens, at most
    `length` characters); None otherwise, so that nothing else is repeated back."""
    typed = text.strip()
    return typed if len(typed) <= length and _ID_CHARACTERS.fullmatch(typed) else None
