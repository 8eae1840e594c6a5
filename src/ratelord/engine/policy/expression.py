"""Rule conditions: CEL expressions compiled and checked once, at load time.

Two rewrites happen before compiling, on tokens (string literals untouched):

* CEL compares ints with doubles but refuses to mix them in arithmetic
  (``pool.remaining - 10`` fails when ``remaining`` is a double).  Every number a
  policy reads is a double, so integer literals become double literals (``10`` →
  ``10.0``); ``pool.remaining < 100`` and ``pool.remaining - 10 < intent.cost * 2``
  both work as written.  Literals next to ``%`` stay integers, because CEL has no
  ``%`` on doubles (``int(time.weekday) % 2 == 0``).
* ``var.field`` becomes the flat variable ``var__field``, which is much cheaper
  to pass to CEL than a map (see :mod:`.activation`); users never see the flat
  names, error messages are translated back.

The checks:

* syntax, with CEL's own message and position;
* variables and fields against :data:`~.variables.VARIABLES` (a short regex
  tokenizer finds the ``var.field`` chains; ``Program.variables()`` finds bare
  names), which also yields the fields the evaluator must put in the context;
* types, by executing the program on complete sample contexts: a type error or
  a result that is not a bool rejects the rule.  CEL has no access to Python
  objects, attributes or the file system, and the context holds only strings,
  floats and string maps, so ``open(...)``, ``__import__(...)`` or
  ``intent.__class__`` are unknown names, rejected here.

CEL stays the reference: a checked condition in the common subset is then run
as a Python closure with the same results (:mod:`.native`), the others by CEL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import cel

from .activation import ContextPlan, Path, flat_name, readable
from .model import PolicyError
from .variables import MAP, VARIABLES, check_path, sample_contexts

_TOKEN = re.compile(
    r"""
    (?P<str>
        [bB]?[rR][bB]?(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'[^'\n]*'|"[^"\n]*")
      | [bB]?(?:'''(?:\\[\s\S]|[^\\])*?'''|\"\"\"(?:\\[\s\S]|[^\\])*?\"\"\"
               |'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")
    )
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<num>0[xX][0-9a-fA-F]+[uU]?|\d*\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+[uU]?)
    | (?P<space>\s+)
    | (?P<op>.)
    """,
    re.VERBOSE,
)
_INT_LITERAL = re.compile(r"\d+")
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_CEL_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")
_CEL_TYPES = {bool: "bool", int: "int", float: "double", str: "string", dict: "map", list: "list"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled ``when`` and what it reads.

    ``paths`` are the ``var`` / ``var.field`` paths in order of appearance;
    ``flat`` those read as flat variables, ``nested`` those read through a map
    (see :mod:`.activation`).
    """

    source: str
    program: cel.Program
    paths: tuple[Path, ...]
    flat: tuple[Path, ...]
    nested: tuple[Path, ...]


@dataclass
class _Analysis:
    """What one pass over the tokens finds, and the text to compile."""

    text: str = ""
    flat: list[Path] = field(default_factory=list)
    nested: list[Path] = field(default_factory=list)
    checks: list[Path] = field(default_factory=list)
    map_keys: list[tuple[str, str, str]] = field(default_factory=list)
    bound: set[str] = field(default_factory=set)


def tokenize(text: str) -> list[Token]:
    """Split CEL text into strings, identifiers, numbers, spaces and operator characters."""
    tokens = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        assert kind is not None  # every alternative is a named group
        tokens.append(Token(kind, match.group()))
    return tokens


def compile_condition(source: str) -> Condition:
    """Compile and check one ``when``; raises :class:`PolicyError` (message only)."""
    if not source.strip():
        raise PolicyError("'when' is empty")
    try:
        # The text as written first, so CEL's positions match what the user sees.
        written = cel.compile(source)
    except Exception as exc:  # the binding raises ValueError, but it is a foreign boundary
        raise PolicyError(_syntax_message(str(exc))) from None
    found = analyse(tokenize(source))
    for name in sorted(set(written.variables()) - set(VARIABLES) - found.bound):
        found.checks.append((name,))
    for path in found.checks:
        problem = check_path(path)
        if problem is not None:
            raise PolicyError(problem)
    try:
        program = cel.compile(found.text)
    except Exception as exc:  # pragma: no cover - the rewrite keeps valid syntax valid
        raise PolicyError(_syntax_message(str(exc))) from None
    paths = list(dict.fromkeys([*found.flat, *found.nested]))
    _probe(program, ContextPlan.of(found.flat, found.nested), found.map_keys)
    return Condition(
        source=source,
        program=program,
        paths=tuple(paths),
        flat=tuple(dict.fromkeys(found.flat)),
        nested=tuple(dict.fromkeys(found.nested)),
    )


def analyse(tokens: list[Token]) -> _Analysis:
    """Find the ``var.field`` chains and rewrite numbers and chains (see module doc)."""
    out = [token.text for token in tokens]
    solid = [i for i, token in enumerate(tokens) if token.kind != "space"]

    def text(k: int) -> str:
        return tokens[solid[k]].text if 0 <= k < len(solid) else ""

    def is_ident(k: int) -> bool:
        return 0 <= k < len(solid) and tokens[solid[k]].kind == "ident"

    found = _Analysis()
    for k, i in enumerate(solid):
        token = tokens[i]
        integer = token.kind == "num" and _INT_LITERAL.fullmatch(token.text)
        if integer and "%" not in (text(k - 1), text(k + 1)):
            out[i] = f"{token.text}.0"
        macro = text(k - 1) == "." and token.text in _MACROS and text(k + 1) == "("
        if macro and is_ident(k + 2) and text(k + 3) == ",":
            found.bound.add(text(k + 2))  # `x` in `.exists(x, ...)`

    k = 0
    while k < len(solid):
        start = k
        if not is_ident(k) or text(k) not in VARIABLES or text(k - 1) == ".":
            k += 1
            continue
        chain = [text(k)]
        k += 1
        while text(k) == "." and is_ident(k + 1):
            chain.append(text(k + 1))
            k += 2
        if text(k) == "(":
            chain.pop()  # a method call such as .startsWith(...) is not a field
        if not chain:
            continue  # `intent(...)`: an unknown function, which the probe reports
        var = chain[0]
        if len(chain) == 1:
            found.nested.append((var,))
            continue
        name = chain[1]
        found.checks.append((var, name))
        if len(chain) > 2:
            if VARIABLES[var].get(name) == MAP:
                found.map_keys.append((var, name, chain[2]))
            else:
                found.checks.append((var, name, chain[2]))
        in_has = text(start - 2) == "has" and text(start - 1) == "(" and text(start + 3) == ")"
        if (in_has and len(chain) == 2) or name not in VARIABLES[var]:
            found.nested.append((var, name))
            continue
        found.flat.append((var, name))
        out[solid[start]] = flat_name(var, name)
        for i in range(solid[start] + 1, solid[start + 2] + 1):
            out[i] = ""
    found.text = "".join(out)
    return found


def _probe(program: cel.Program, plan: ContextPlan, map_keys: list[tuple[str, str, str]]) -> None:
    """Run the program on sample contexts: type errors and non-bool results are load errors."""
    for sample in sample_contexts(map_keys):
        try:
            result = program.execute(cel.Context(plan.build(sample)))
        except KeyError:
            continue  # a label map without the key: legitimate, decided at run time
        except Exception as exc:  # any CEL evaluation error is the user's to fix
            raise PolicyError(f"condition cannot be evaluated: {readable(str(exc))}") from None
        if not isinstance(result, bool):
            raise PolicyError(
                f"condition must be true or false, but gives a {cel_type(result)} ({result!r})"
            )


def cel_type(value: Any) -> str:
    return _CEL_TYPES.get(type(value), type(value).__name__)


def _syntax_message(text: str) -> str:
    match = _CEL_ERROR.search(text)
    if match is None:
        return f"CEL syntax error: {text.splitlines()[0] if text else 'unknown'}"
    line, column, message = match.groups()
    return f"CEL syntax error in 'when' at {line}:{column}: {message}"
