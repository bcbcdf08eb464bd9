"""A reader for the protobuf text format used by the platform's ``janitor.conf``.

We read the file without its ``.proto`` schema: the services need only a few
fields and must not reject a real configuration because of the many fields
they do not know. The result is a tree of dicts where every field maps to the
list of its values (a field may repeat), so callers pick what they need and
ignore the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

Value = Union[str, int, float, bool, "Message"]
Message = dict[str, list[Value]]


class TextProtoError(ValueError):
    """A syntax error, with the line and column where it was found."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line} column {column}: {message}")
        self.line = line
        self.column = column


@dataclass
class _Token:
    kind: str  # "ident", "string", "number", "punct", "eof"
    text: str
    value: object
    line: int
    column: int


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*|\[[A-Za-z0-9_./]+\])
  | (?P<punct>[{}<>:;,\[\]])
    """,
    re.VERBOSE,
)

_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "?": "?",
}


def _unescape(body: str, line: int, column: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise TextProtoError("dangling backslash in string", line, column)
        e = body[i]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 1
        elif e in "xX":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 1 :])
            if not m:
                raise TextProtoError("bad \\x escape in string", line, column)
            out.append(chr(int(m.group(), 16)))
            i += 1 + len(m.group())
        elif e in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i:])
            assert m is not None
            out.append(chr(int(m.group(), 8)))
            i += len(m.group())
        else:
            raise TextProtoError(f"unknown escape \\{e} in string", line, column)
    return "".join(out)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    line = 1
    line_start = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        column = pos - line_start + 1
        if m is None:
            raise TextProtoError(f"unexpected character {text[pos]!r}", line, column)
        kind = m.lastgroup
        assert kind is not None
        tok_text = m.group()
        if kind == "string":
            value: object = _unescape(tok_text[1:-1], line, column)
            tokens.append(_Token(kind, tok_text, value, line, column))
        elif kind == "number":
            num = tok_text.rstrip("fF") if not tok_text.lower().startswith(("0x", "-0x", "+0x")) else tok_text
            if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", num):
                value = int(num, 16)
            elif re.fullmatch(r"[-+]?\d+", num):
                value = int(num)
            else:
                value = float(num)
            tokens.append(_Token(kind, tok_text, value, line, column))
        elif kind != "ws":
            tokens.append(_Token(kind, tok_text, tok_text, line, column))
        newlines = tok_text.count("\n")
        if newlines:
            line += newlines
            line_start = pos + tok_text.rindex("\n") + 1
        pos = m.end()
    tokens.append(_Token("eof", "", None, line, pos - line_start + 1))
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: _Token | None = None) -> TextProtoError:
        tok = tok or self.peek()
        found = "end of file" if tok.kind == "eof" else repr(tok.text)
        return TextProtoError(f"{message}, found {found}", tok.line, tok.column)

    def message(self, closer: str | None) -> Message:
        result: Message = {}
        while True:
            tok = self.peek()
            if closer is None and tok.kind == "eof":
                return result
            if closer is not None and tok.kind == "punct" and tok.text == closer:
                self.take()
                return result
            if tok.kind != "ident":
                expected = "a field name" if closer is None else f"a field name or {closer!r}"
                raise self.error(f"expected {expected}")
            name = self.take().text
            nxt = self.peek()
            if nxt.kind == "punct" and nxt.text == ":":
                self.take()
                nxt = self.peek()
                if nxt.kind == "punct" and nxt.text == "[":
                    self.take()
                    values = self.list_values()
                else:
                    values = [self.value()]
            elif nxt.kind == "punct" and nxt.text in "{<":
                values = [self.value()]
            else:
                raise self.error(f"expected ':' or '{{' after field {name!r}")
            result.setdefault(name, []).extend(values)
            sep = self.peek()
            if sep.kind == "punct" and sep.text in ";,":
                self.take()

    def list_values(self) -> list[Value]:
        values: list[Value] = []
        if self.peek().text == "]":
            self.take()
            return values
        while True:
            values.append(self.value())
            tok = self.take()
            if tok.kind == "punct" and tok.text == "]":
                return values
            if not (tok.kind == "punct" and tok.text == ","):
                raise self.error("expected ',' or ']' in list", tok)

    def value(self) -> Value:
        tok = self.take()
        if tok.kind == "punct" and tok.text in "{<":
            return self.message("}" if tok.text == "{" else ">")
        if tok.kind == "string":
            parts = [str(tok.value)]
            # Adjacent string literals concatenate, as in C.
            while self.peek().kind == "string":
                parts.append(str(self.take().value))
            return "".join(parts)
        if tok.kind == "number":
            assert isinstance(tok.value, int | float)
            return tok.value
        if tok.kind == "ident":
            if tok.text in ("true", "True", "t"):
                return True
            if tok.text in ("false", "False", "f"):
                return False
            return tok.text  # an enum value name, or inf/nan
        raise self.error("expected a value", tok)


def parse(text: str) -> Message:
    """Parse protobuf text format into a dict of field name -> list of values."""
    return _Parser(_tokenize(text)).message(None)
