"""The one C emitter: arrays, designated struct initializers, defines, strings and comments.

Every generated C file (the model sources from ``qsnn-convert``, the front-end tables and
the spec headers from :mod:`qsnnkit.generated`) is written through these functions, so
number formats, escaping and layout are decided once. Structs are always initialised with
C99 designated initializers (``.field = value``): a reordered or added field in a C struct
cannot silently shift a model's values into the wrong members.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

_C_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: Value range of each C integer type the generated code uses.
C_INT_RANGES: dict[str, tuple[int, int]] = {
    "int8_t": (-(2**7), 2**7 - 1), "uint8_t": (0, 2**8 - 1),
    "int16_t": (-(2**15), 2**15 - 1), "uint16_t": (0, 2**16 - 1),
    "int32_t": (-(2**31), 2**31 - 1), "uint32_t": (0, 2**32 - 1),
    "int64_t": (-(2**63), 2**63 - 1), "uint64_t": (0, 2**64 - 1),
}


def ident(name: str) -> str:
    """``name`` if it is a C identifier, else ValueError."""
    if not _C_IDENT.match(name):
        raise ValueError(f"{name!r} is not a C identifier")
    return name


def int_literal(v: int, ctype: str, hex_digits: int = 0) -> str:
    """A C integer constant of type ``ctype`` (range-checked): unsigned types get a ``u``
    suffix, 64-bit ones ``ull``/``ll``; INT*_MIN is written as an expression (C has no
    negative literals)."""
    lo, hi = C_INT_RANGES[ctype]
    v = int(v)
    if not lo <= v <= hi:
        raise ValueError(f"{v} does not fit {ctype} ({lo}..{hi})")
    unsigned = ctype.startswith("u")
    wide = ctype.endswith("64_t")
    if unsigned:
        body = f"0x{v:0{hex_digits}X}" if hex_digits else str(v)
        return body + ("ull" if wide else "u")
    if v == lo and ctype in ("int32_t", "int64_t"):
        return f"({v + 1}{'ll' if wide else ''} - 1)"
    return str(v) + ("ll" if wide else "")


def string_literal(s: str) -> str:
    """A C string literal of ``s``: printable ASCII kept, everything else escaped as octal
    (so no character of ``s`` can end the literal, a comment or a line)."""
    out = []
    for ch in s.encode("utf-8"):
        c = chr(ch)
        if c in ('"', "\\"):
            out.append("\\" + c)
        elif 0x20 <= ch < 0x7F and c != "?":  # '?' escaped: no trigraphs
            out.append(c)
        else:
            out.append(f"\\{ch:03o}")
    return '"' + "".join(out) + '"'


def comment(text: str) -> str:
    """A C block comment holding ``text`` on one or more lines; ``*/`` inside it is broken up
    and non-printable characters are replaced, so the text cannot end the comment or form
    a trigraph."""
    safe = "".join(c if (c == "\n" or 0x20 <= ord(c) < 0x7F) else "?" for c in text)
    safe = safe.replace("*/", "* /").replace("/*", "/ *").replace("??", "? ?")  # no nesting, no trigraph
    lines = safe.split("\n")
    if len(lines) == 1:
        return f"/* {lines[0]} */\n"
    return "/*\n" + "".join(f" * {ln}".rstrip() + "\n" for ln in lines) + " */\n"


def define(name: str, value: int | str, doc: str = "", ctype: str | None = None) -> str:
    """``#define NAME value`` with an optional trailing comment; ints through int_literal."""
    if isinstance(value, str):
        body = value
    elif ctype is not None:
        body = int_literal(value, ctype)
    else:
        body = f"({value})" if int(value) < 0 else str(int(value))
    line = f"#define {ident(name)} {body}"
    if doc:
        line += " " + comment(doc).rstrip("\n")
    return line + "\n"


def array(ctype: str, name: str, values: Sequence[int] | np.ndarray, *, static: bool = True,
          per_line: int = 12, hex_digits: int = 0) -> str:
    """``[static ]const ctype name[N] = {...};`` with every value range-checked for ctype."""
    vals = [int(v) for v in np.asarray(values).reshape(-1)]
    if not vals:
        raise ValueError(f"array {name}: C99 has no empty arrays")
    if isinstance(values, np.ndarray) and (not np.issubdtype(values.dtype, np.integer) or values.dtype == np.bool_):
        raise ValueError(f"array {name}: needs integer values, got dtype {values.dtype}")
    lits = [int_literal(v, ctype, hex_digits) for v in vals]
    lines = ["    " + ", ".join(lits[i:i + per_line]) + "," for i in range(0, len(lits), per_line)]
    head = ("static " if static else "") + f"const {ctype} {ident(name)}[{len(vals)}] = {{\n"
    return head + "\n".join(lines) + "\n};\n"


def words(name: str, values: Sequence[int] | np.ndarray, *, static: bool = True) -> str:
    """Packed 32-bit words, eight hex words to a line."""
    return array("uint32_t", name, values, static=static, per_line=8, hex_digits=8)


def designated(fields: Mapping[str, str], indent: str = "    ") -> str:
    """``{ .a = x, .b = y }`` over several lines, from already formatted C expressions."""
    body = "".join(f"{indent}    .{ident(k)} = {v},\n" for k, v in fields.items())
    return "{\n" + body + indent + "}"


def struct_array(ctype: str, name: str, items: Iterable[Mapping[str, str]], *, static: bool = True) -> str:
    """``[static ]const ctype name[N] = { {.f = ...}, ... };`` with designated initializers."""
    its = list(items)
    if not its:
        raise ValueError(f"struct array {name}: C99 has no empty arrays")
    body = "".join("    " + designated(it, "    ") + ",\n" for it in its)
    return ("static " if static else "") + f"const {ctype} {ident(name)}[{len(its)}] = {{\n{body}}};\n"


def struct_value(ctype: str, name: str, fields: Mapping[str, str], *, static: bool = False) -> str:
    """``[static ]const ctype name = {.f = ..., ...};``"""
    return ("static " if static else "") + f"const {ctype} {ident(name)} = {designated(fields, '')};\n"


def guard(name: str, body: str, banner: str) -> str:
    """A whole header: banner comment, include guard ``name``, body."""
    g = ident(name)
    return f"{comment(banner)}#ifndef {g}\n#define {g}\n\n{body}\n#endif /* {g} */\n"
