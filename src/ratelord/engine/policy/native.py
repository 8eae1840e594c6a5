"""Rule conditions as Python closures: the common subset of CEL, run without CEL.

Handing values to CEL costs far more than comparing them (see
:mod:`.activation`), and most conditions only compare fields with literals.
:func:`translate` turns a condition already checked by
:func:`~.expression.compile_condition` into a closure ``run(ctx) -> bool``
that gives CEL's result, or ``None`` when the condition uses anything outside
this subset; those conditions keep running through CEL.

The subset: double, bool and plainly quoted string literals (no escapes, no
``r``/``b`` prefix; integer literals are doubles, as in :mod:`.expression`);
``var.field``; labels (``x.labels.key``, ``x.labels["key"]``,
``"key" in x.labels``); ``has(var.field)``, ``has(x.labels.key)``; ``!``,
unary ``-``, ``* / + -`` (``+`` also joins strings), ``< <= > >= == !=``,
``in`` a list of literals, ``&&``, ``||``, ``?:``, parentheses, and the string
methods ``startsWith``, ``endsWith``, ``contains``.  Every operand's type is
known from :data:`~.variables.VARIABLES`; an expression mixing types (which
CEL may reject or compare as unequal) is left to CEL.  Not translated: ``%``,
``int()``, ``size()``, ``matches()``, macros, map literals, ``null``, bare
variables (``intent["urgency"]``), hex and unsigned literals.

CEL's run-time semantics, kept here:

* doubles are IEEE 754: ``x / 0.0`` is ``±inf`` or NaN (Python would raise);
  ordering a NaN (``<``, ``<=``, ``>``, ``>=``) is an error, ``==`` is false;
* a variable, field or label that is not in the context is an error;
* ``&&`` and ``||`` are commutative over errors: ``error && false`` is false,
  ``error || true`` is true; any other mix with an error is that error;
* values are typed as they are read: a double field must hold a float (an
  ``int`` reads as a float, as in :mod:`.activation`), a string field or label
  a string.  Anything else is an error naming ``var.field``; CEL would compare
  some of those as unequal instead, but no context the daemon builds has them.

Errors are :class:`EvaluationError` with a message that names ``var.field``.
The closures read only what they need, through ``ctx[var]``, so a lazy
``Mapping`` context builds only the variables the evaluated rules read.  Text
is parsed into closures; nothing is passed to ``eval``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .expression import Condition, Token, cel_type, tokenize
from .variables import DOUBLE, MAP, STRING, VARIABLES

Context = Mapping[str, Any]
Fn = Callable[[Context], Any]
Path = tuple[str, str]

BOOL = "bool"
LIST = "list"
VAR = "var"  # a bare variable: only a field may be selected from it

_SCALARS = frozenset({DOUBLE, STRING, BOOL})
_PAIRS = frozenset({"&&", "||", "==", "!=", "<=", ">="})
_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_EQUALITY: dict[str, Callable[[Any, Any], bool]] = {"==": operator.eq, "!=": operator.ne}
_SWAPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_METHODS: dict[str, Callable[[str, str], bool]] = {
    "startsWith": str.startswith,
    "endsWith": str.endswith,
    "contains": operator.contains,
}
_MISSING = (KeyError, TypeError, IndexError)


class EvaluationError(Exception):
    """A condition failed at run time, where CEL fails too; the message names the field."""


class _Unsupported(Exception):
    """Outside the subset: the condition runs through CEL."""


@dataclass(frozen=True, slots=True)
class NativeCondition:
    """A translated condition: ``run(ctx)`` is True or False, or raises (the rule errs)."""

    run: Callable[[Context], bool]
    reads: tuple[Path, ...]  # the var.field paths it reads, in order of appearance


@dataclass(frozen=True, slots=True)
class _Node:
    """A typed subexpression: a closure computing it, or a constant."""

    type: str  # DOUBLE, STRING, BOOL, MAP, LIST or VAR
    fn: Fn
    value: Any = None  # a constant; a list's (type, items); a map's path; a VAR's name
    const: bool = False
    path: Path | None = None  # a double or string var.field read: comparisons inline it


def translate(condition: Condition) -> NativeCondition | None:
    """The condition as a closure, or ``None`` when it is outside the subset (see module doc)."""
    parser = _Parser(condition.source)
    try:
        node = parser.expr()
        if parser.pos != len(parser.tokens) or node.type != BOOL:
            return None
    except (_Unsupported, RecursionError):
        return None
    return NativeCondition(run=node.fn, reads=tuple(dict.fromkeys(parser.reads)))


def _solid(source: str) -> tuple[list[Token], list[int]]:
    """The tokens without spaces (two-character operators joined when written
    together), and where each ends in ``source``."""
    tokens: list[Token] = []
    ends: list[int] = []
    end = 0
    joinable = False
    for token in tokenize(source):
        end += len(token.text)
        if token.kind == "space":
            joinable = False
        elif joinable and token.kind == "op" and tokens[-1].text + token.text in _PAIRS:
            tokens[-1] = Token("op", tokens[-1].text + token.text)
            ends[-1] = end
            joinable = False
        else:
            tokens.append(token)
            ends.append(end)
            joinable = token.kind == "op"
    return tokens, ends


class _Parser:
    """Recursive descent over CEL's grammar, building :class:`_Node` closures as it goes."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens, self.ends = _solid(source)
        self.pos = 0
        self.reads: list[Path] = []

    def text(self, start: int) -> str:
        """The source from the token at ``start`` to the last one taken."""
        begin = self.ends[start] - len(self.tokens[start].text)
        return self.source[begin : self.ends[self.pos - 1]]

    def peek(self) -> str:
        return self.tokens[self.pos].text if self.pos < len(self.tokens) else ""

    def take(self) -> Token:
        if self.pos >= len(self.tokens):
            raise _Unsupported
        self.pos += 1
        return self.tokens[self.pos - 1]

    def expect(self, text: str) -> None:
        if self.take().text != text:
            raise _Unsupported

    def ident(self) -> str:
        token = self.take()
        if token.kind != "ident":
            raise _Unsupported
        return token.text

    def expr(self) -> _Node:
        condition = self.or_()
        if self.peek() != "?":
            return condition
        self.take()
        yes = self.or_()
        self.expect(":")
        return _ternary(condition, yes, self.expr())

    def or_(self) -> _Node:
        operands = [self.and_()]
        while self.peek() == "||":
            self.take()
            operands.append(self.and_())
        return operands[0] if len(operands) == 1 else _logic(operands, conjunction=False)

    def and_(self) -> _Node:
        operands = [self.relation()]
        while self.peek() == "&&":
            self.take()
            operands.append(self.relation())
        return operands[0] if len(operands) == 1 else _logic(operands, conjunction=True)

    def relation(self) -> _Node:
        start = self.pos
        left = self.addition()
        while (op := self.peek()) in _ORDERING or op in _EQUALITY or op == "in":
            self.take()
            right = self.addition()
            left = _relation(op, left, right, self.text(start))
        return left

    def addition(self) -> _Node:
        left = self.multiplication()
        while (op := self.peek()) in ("+", "-"):
            self.take()
            left = _arithmetic(op, left, self.multiplication())
        return left

    def multiplication(self) -> _Node:
        left = self.unary()
        while (op := self.peek()) in ("*", "/"):
            self.take()
            left = _arithmetic(op, left, self.unary())
        return left

    def unary(self) -> _Node:
        op = self.peek()
        if op == "!":
            self.take()
            operand = _require(self.unary(), BOOL)
            fn = operand.fn
            return _Node(BOOL, lambda ctx: not fn(ctx))
        if op == "-":
            self.take()
            operand = _require(self.unary(), DOUBLE)
            if operand.const:
                return _constant(DOUBLE, -operand.value)
            fn = operand.fn
            return _Node(DOUBLE, lambda ctx: -fn(ctx))
        return self.member()

    def member(self) -> _Node:
        node = self.primary()
        while True:
            if self.peek() == ".":
                self.take()
                name = self.ident()
                node = self.method(node, name) if self.peek() == "(" else self.select(node, name)
            elif self.peek() == "[":
                self.take()
                key = self.expr()
                self.expect("]")
                if node.type != MAP or not key.const or key.type != STRING:
                    raise _Unsupported
                node = _label(node, key.value)
            elif node.type == VAR:
                raise _Unsupported  # a whole variable: only CEL can hand it over
            else:
                return node

    def select(self, node: _Node, name: str) -> _Node:
        if node.type == MAP:
            return _label(node, name)
        if node.type != VAR:
            raise _Unsupported
        var = node.value
        kind = VARIABLES[var].get(name)
        if kind is None:
            raise _Unsupported
        self.reads.append((var, name))
        return _field(var, name, kind)

    def method(self, node: _Node, name: str) -> _Node:
        method = _METHODS.get(name)
        if method is None or node.type != STRING:
            raise _Unsupported
        self.expect("(")
        argument = _require(self.expr(), STRING)
        self.expect(")")
        return _Node(BOOL, _binary(method, node, argument))

    def primary(self) -> _Node:
        token = self.take()
        text = token.text
        if token.kind == "num":
            return _constant(DOUBLE, _number(text))
        if token.kind == "str":
            return _constant(STRING, _string(text))
        if token.kind == "ident":
            if text in ("true", "false"):
                return _constant(BOOL, text == "true")
            if text == "has" and self.peek() == "(":
                return self.has()
            if text in VARIABLES and self.peek() != "(":
                return _Node(VAR, _never, text)
            raise _Unsupported
        if text == "(":
            node = self.expr()
            self.expect(")")
            return node
        if text == "[":
            return self.list_literal()
        raise _Unsupported

    def list_literal(self) -> _Node:
        items: list[_Node] = []
        while self.peek() != "]":
            items.append(self.expr())
            if self.peek() != ",":
                break
            self.take()
        self.expect("]")
        types = {item.type for item in items}
        if not all(item.const for item in items) or len(types) > 1 or not types <= _SCALARS:
            raise _Unsupported
        values = frozenset(item.value for item in items)
        return _constant(LIST, (types.pop() if types else None, values))

    def has(self) -> _Node:
        self.expect("(")
        var = self.ident()
        fields = VARIABLES.get(var)
        self.expect(".")
        name = self.ident()
        if fields is None or name not in fields:
            raise _Unsupported
        self.reads.append((var, name))
        if self.peek() == ".":
            self.take()
            key = self.ident()
            self.expect(")")
            if fields[name] != MAP:
                raise _Unsupported
            read_map = _field(var, name, MAP).fn
            return _Node(BOOL, lambda ctx: key in read_map(ctx))
        self.expect(")")
        return _Node(BOOL, _has_field(var, name))


# --------------------------------------------------------------------------- nodes


def _constant(kind: str, value: Any) -> _Node:
    return _Node(kind, lambda ctx: value, value, const=True)


def _never(ctx: Context) -> Any:  # pragma: no cover - a VAR node is never run
    raise AssertionError("a bare variable is not a value")


def _require(node: _Node, kind: str) -> _Node:
    if node.type != kind:
        raise _Unsupported
    return node


def _number(text: str) -> float:
    if text[:2] in ("0x", "0X") or text[-1] in "uU":
        raise _Unsupported  # an int or uint in CEL: it cannot mix with doubles
    return float(text)


def _string(text: str) -> str:
    if text[0] not in "'\"" or text[:3] in ("'''", '"""') or "\\" in text:
        raise _Unsupported  # raw, bytes, triple-quoted or escaped: CEL decodes those
    return text[1:-1]


def _field(var: str, name: str, kind: Any) -> _Node:
    """Read ``ctx[var][name]``, typed: see the module doc."""
    if kind == MAP:

        def read_map(ctx: Context) -> Any:
            try:
                value = ctx[var][name]
            except _MISSING:
                raise _unreadable(ctx, var, name) from None
            if type(value) is dict or isinstance(value, Mapping):
                return value
            raise _wrong_type(value, f"{var}.{name}", MAP)

        return _Node(MAP, read_map, (var, name))
    if kind == DOUBLE:

        def read_double(ctx: Context) -> float:
            try:
                value = ctx[var][name]
            except _MISSING:
                raise _unreadable(ctx, var, name) from None
            if type(value) is float:
                return value
            return _as_double(value, f"{var}.{name}")

        return _Node(DOUBLE, read_double, path=(var, name))

    def read_string(ctx: Context) -> str:
        try:
            value = ctx[var][name]
        except _MISSING:
            raise _unreadable(ctx, var, name) from None
        if type(value) is str:
            return value
        return _as_string(value, f"{var}.{name}")

    return _Node(STRING, read_string, path=(var, name))


def _label(node: _Node, key: str) -> _Node:
    var, name = node.value
    read_map = node.fn

    def read_label(ctx: Context) -> str:
        try:
            value = read_map(ctx)[key]
        except KeyError:
            raise EvaluationError(f"no such key '{key}' in {var}.{name}") from None
        if type(value) is str:
            return value
        return _as_string(value, f"{var}.{name}.{key}")

    return _Node(STRING, read_label)


def _has_field(var: str, name: str) -> Fn:
    def has(ctx: Context) -> bool:
        try:
            source = ctx[var]
        except _MISSING:
            raise EvaluationError(f"no value for {var}: it is not in the context") from None
        if type(source) is not dict and not isinstance(source, Mapping):
            raise _wrong_type(source, var, MAP)
        return name in source

    return has


def _binary(op: Callable[[Any, Any], Any], left: _Node, right: _Node) -> Fn:
    """``op(left, right)``, a constant operand captured as a value."""
    fa, fb = left.fn, right.fn
    if right.const:
        b = right.value
        return lambda ctx: op(fa(ctx), b)
    if left.const:
        a = left.value
        return lambda ctx: op(a, fb(ctx))
    return lambda ctx: op(fa(ctx), fb(ctx))


def _arithmetic(op: str, left: _Node, right: _Node) -> _Node:
    joins = left.type == STRING and op == "+"
    if left.type != right.type or (left.type != DOUBLE and not joins):
        raise _Unsupported
    function = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": _divide}[op]
    return _Node(left.type, _binary(function, left, right))


def _divide(a: float, b: float) -> float:
    """IEEE division, as CEL does it: ±inf, or NaN for 0/0 and NaN/0."""
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0.0:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _relation(op: str, left: _Node, right: _Node, text: str) -> _Node:
    if op == "in":
        if right.type == MAP and left.type == STRING:
            return _Node(BOOL, _binary(operator.contains, right, left))
        if right.type != LIST or left.type not in _SCALARS:
            raise _Unsupported
        kind, values = right.value
        if kind not in (None, left.type):
            raise _Unsupported
        fn = left.fn
        return _Node(BOOL, lambda ctx: fn(ctx) in values)
    if left.type != right.type or left.type not in _SCALARS:
        raise _Unsupported
    if left.const and right.path is not None:
        op, left, right = _SWAPPED[op], right, left  # `1 < x` is `x > 1`
    if right.const and left.path is not None:
        return _Node(BOOL, _field_op(op, left, right.value, text))
    if op in _EQUALITY:
        return _Node(BOOL, _binary(_EQUALITY[op], left, right))
    if left.type == STRING:
        return _Node(BOOL, _binary(_ORDERING[op], left, right))
    if left.type != DOUBLE:
        raise _Unsupported
    return _Node(BOOL, _ordered(_ORDERING[op], left, right, text))


def _field_op(symbol: str, field: _Node, b: Any, text: str) -> Fn:
    """``var.field <op> literal``, the commonest shape, as one closure (the read inlined)."""
    assert field.path is not None
    var, name = field.path
    dotted = f"{var}.{name}"
    op = _ORDERING.get(symbol) or _EQUALITY[symbol]
    exact: type = float if field.type == DOUBLE else str
    convert: Callable[[Any, str], Any] = _as_double if field.type == DOUBLE else _as_string
    ordered = field.type == DOUBLE and symbol in _ORDERING  # NaN has no order

    def compare_field(ctx: Context) -> bool:
        try:
            a = ctx[var][name]
        except _MISSING:
            raise _unreadable(ctx, var, name) from None
        if type(a) is not exact:
            a = convert(a, dotted)
        if op(a, b):
            return True
        if ordered and a != a:
            raise _nan(text)
        return False

    return compare_field


def _ordered(op: Callable[[Any, Any], bool], left: _Node, right: _Node, text: str) -> Fn:
    """Ordering of doubles: as Python's, but a NaN operand is an error, as in CEL."""
    fa, fb = left.fn, right.fn
    if right.const:  # a literal: never NaN
        b = right.value

        def compare_constant(ctx: Context) -> bool:
            a = fa(ctx)
            if op(a, b):
                return True
            if a != a:
                raise _nan(text)
            return False

        return compare_constant

    def compare(ctx: Context) -> bool:
        a, b = fa(ctx), fb(ctx)
        if op(a, b):
            return True
        if a != a or b != b:
            raise _nan(text)
        return False

    return compare


def _logic(operands: list[_Node], conjunction: bool) -> _Node:
    """``a && b && ...`` or ``a || b || ...``, commutative over errors as in CEL."""
    for operand in operands:
        _require(operand, BOOL)
    fns = tuple(operand.fn for operand in operands)
    decisive = not conjunction  # the value that decides: False for &&, True for ||
    if len(fns) == 2:
        fa, fb = fns

        def pair(ctx: Context) -> bool:
            try:
                if fa(ctx) is decisive:
                    return decisive
            except Exception:
                if _gives(fb, ctx, decisive):
                    return decisive
                raise
            return fb(ctx)

        return _Node(BOOL, pair)

    def chain(ctx: Context) -> bool:
        error: Exception | None = None
        for fn in fns:
            try:
                if fn(ctx) is decisive:
                    return decisive
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error
        return not decisive

    return _Node(BOOL, chain)


def _gives(fn: Fn, ctx: Context, value: bool) -> bool:
    try:
        return fn(ctx) is value
    except Exception:  # the first operand's error is the one reported
        return False


def _ternary(condition: _Node, yes: _Node, no: _Node) -> _Node:
    _require(condition, BOOL)
    if yes.type != no.type or yes.type not in _SCALARS:
        raise _Unsupported
    fc, fa, fb = condition.fn, yes.fn, no.fn
    return _Node(yes.type, lambda ctx: fa(ctx) if fc(ctx) else fb(ctx))


# --------------------------------------------------------------------------- run-time errors


def _as_double(value: Any, name: str) -> float:
    if type(value) is int or isinstance(value, float):
        return float(value)
    raise _wrong_type(value, name, DOUBLE)


def _as_string(value: Any, name: str) -> str:
    if isinstance(value, str):
        return str.__str__(value)  # the plain value of a str subclass (an enum member)
    raise _wrong_type(value, name, STRING)


def _wrong_type(value: Any, name: str, kind: str) -> EvaluationError:
    return EvaluationError(f"{name} is a {cel_type(value)}, not a {kind}")


def _unreadable(ctx: Context, var: str, name: str) -> EvaluationError:
    try:
        source = ctx[var]
    except _MISSING:
        return EvaluationError(f"no value for {var}.{name}: {var} is not in the context")
    if type(source) is not dict and not isinstance(source, Mapping):
        return _wrong_type(source, var, MAP)
    return EvaluationError(f"no value for {var}.{name}")


def _nan(text: str) -> EvaluationError:
    return EvaluationError(f"'{text}' compares a NaN (not a number has no order)")
