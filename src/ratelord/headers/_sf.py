"""The part of RFC 9651 (Structured Field Values) the IETF rate-limit fields use.

No installed library parses structured fields, so this reads Lists and
Dictionaries of Items with Parameters: Integers, Decimals, Strings, Tokens,
Byte Sequences and Booleans.  Inner Lists, Dates and Display Strings are
rejected (the rate-limit fields never carry them).  Any syntax error raises
:class:`SFError` for the whole field, as RFC 9651 §4.2 requires.
"""

from __future__ import annotations

import base64
import binascii
import re
import string

BareItem = int | float | str | bytes | bool
Params = dict[str, BareItem]
Item = tuple[BareItem, Params]


class Token(str):
    """An sf-token, kept apart from an sf-string of the same text."""

    __slots__ = ()


class SFError(ValueError):
    """The field is not a valid structured field of the expected type."""


_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~:/0-9A-Za-z]*")
_NUMBER = re.compile(r"-?(\d+)(?:\.(\d+))?")
_BYTES = re.compile(r":([A-Za-z0-9+/=]*):")
_PRINTABLE = set(string.printable) - set("\t\n\r\x0b\x0c")


def parse_list(text: str) -> list[Item]:
    """An sf-list: ``item;param=1, item2``."""
    parser = _Parser(text)
    members: list[Item] = []
    while not parser.done():
        members.append(parser.item())
        if not parser.next_member():
            break
    parser.finish()
    return members


def parse_dictionary(text: str) -> dict[str, Item]:
    """An sf-dictionary: ``key=item;param, flag`` (a bare key means ``True``)."""
    parser = _Parser(text)
    members: dict[str, Item] = {}
    while not parser.done():
        key = parser.key()
        if parser.peek() == "=":
            parser.pos += 1
            members[key] = parser.item()
        else:
            members[key] = (True, parser.params())
        if not parser.next_member():
            break
    parser.finish()
    return members


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text.strip(" \t")
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def fail(self, what: str) -> SFError:
        return SFError(f"{what} at offset {self.pos} of {self.text!r}")

    def finish(self) -> None:
        if not self.done():
            raise self.fail("trailing characters")

    def next_member(self) -> bool:
        """Consume ``OWS "," OWS`` between members; False at the end of input."""
        self._skip(" \t")
        if self.done():
            return False
        if self.peek() != ",":
            raise self.fail("expected ','")
        self.pos += 1
        self._skip(" \t")
        if self.done():
            raise self.fail("trailing ','")
        return True

    def item(self) -> Item:
        return self.bare_item(), self.params()

    def params(self) -> Params:
        params: Params = {}
        while self.peek() == ";":
            self.pos += 1
            self._skip(" ")
            key = self.key()
            if self.peek() == "=":
                self.pos += 1
                params[key] = self.bare_item()
            else:
                params[key] = True
        return params

    def key(self) -> str:
        match = _KEY.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a key")
        self.pos = match.end()
        return match.group()

    def bare_item(self) -> BareItem:
        char = self.peek()
        if char == "-" or char.isdigit():
            return self._number()
        if char == '"':
            return self._string()
        if char == ":":
            return self._bytes()
        if char == "?":
            return self._boolean()
        match = _TOKEN.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            return Token(match.group())
        raise self.fail("expected an item")

    def _number(self) -> int | float:
        match = _NUMBER.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a number")
        whole, fraction = match.groups()
        if fraction is None and len(whole) > 15:
            raise self.fail("integer longer than 15 digits")
        if fraction is not None and (len(whole) > 12 or len(fraction) > 3):
            raise self.fail("decimal out of range")
        self.pos = match.end()
        return int(match.group()) if fraction is None else float(match.group())

    def _string(self) -> str:
        self.pos += 1
        chars: list[str] = []
        while not self.done():
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\":
                escaped = self.peek()
                if escaped not in ('"', "\\"):
                    raise self.fail("bad escape in string")
                chars.append(escaped)
                self.pos += 1
            elif char == '"':
                return "".join(chars)
            elif char not in _PRINTABLE:
                raise self.fail("non-printable character in string")
            else:
                chars.append(char)
        raise self.fail("unterminated string")

    def _bytes(self) -> bytes:
        match = _BYTES.match(self.text, self.pos)
        if not match:
            raise self.fail("bad byte sequence")
        self.pos = match.end()
        try:
            return base64.b64decode(match.group(1), validate=True)
        except binascii.Error as exc:
            raise self.fail("bad base64 in byte sequence") from exc

    def _boolean(self) -> bool:
        value = self.text[self.pos + 1 : self.pos + 2]
        if value not in ("0", "1"):
            raise self.fail("bad boolean")
        self.pos += 2
        return value == "1"

    def _skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.pos += 1
