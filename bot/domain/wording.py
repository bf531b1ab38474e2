"""Messages that name people, written without knowing how an interface shows a person.

The domain, the services and the application name people in what they say (who may decide,
who is the commander), but how a person is shown belongs to whoever shows the message: a
mention in Slack, the plain user id in the CLI and the logs. So a message is a `Wording`:
its text and the people it names, in order. `str()` shows every person as their user id;
`render` takes the interface's own hooks (the Slack adapter's are in `bot/slack/text.py`).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Person:
    """One person a message names, by user id."""

    user_id: str


@dataclass(frozen=True, slots=True)
class People:
    """Several people named together, in id order; `none` is what is said when nobody is."""

    user_ids: tuple[str, ...]
    none: str

    @classmethod
    def of(cls, user_ids: Iterable[str], *, none: str) -> "People":
        """The people in `user_ids`, each once, sorted so a message always reads the same."""
        return cls(tuple(sorted(set(user_ids))), none)


Part = str | Person | People
"""A piece of a message: words as they are written, or people."""

PEOPLE_SEPARATOR = ", "


def _same(text: str) -> str:
    return text


@dataclass(frozen=True, slots=True, init=False)
class Wording:
    """A message as a sequence of words and people: `Wording("Only ", Person(u), " can.")`.

    No template is parsed, so words that echo what a user typed (braces, `$`, markup) are
    never read as placeholders."""

    parts: tuple[Part, ...]

    def __init__(self, *parts: Part) -> None:
        object.__setattr__(self, "parts", tuple(part for part in parts if part != ""))

    def render(
        self, *, text: Callable[[str], str] = _same, person: Callable[[str], str] = _same
    ) -> str:
        """The message for one interface: `text` shows the words (escapes them, say), `person`
        shows one user id; people named together are joined by commas."""
        shown: list[str] = []
        for part in self.parts:
            if isinstance(part, Person):
                shown.append(person(part.user_id))
            elif isinstance(part, People):
                names = [person(user_id) for user_id in part.user_ids]
                shown.append(PEOPLE_SEPARATOR.join(names) if names else text(part.none))
            else:
                shown.append(text(part))
        return "".join(shown)

    def __str__(self) -> str:
        """The plain rendering, for logs and the CLI: every person as their user id."""
        return self.render()

    def __add__(self, other: "Wording | str") -> "Wording":
        more = other.parts if isinstance(other, Wording) else (other,)
        return Wording(*self.parts, *more)

    def __radd__(self, other: str) -> "Wording":
        return Wording(other, *self.parts)
