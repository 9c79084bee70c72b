"""The one C emitter (qsnnkit.cgen): formats, ranges, escaping, designated initializers, and
that what it writes compiles with the project's strict flags and means what it says."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qsnnkit import cgen
from qsnnkit.clib import STRICT_CFLAGS
from qsnnkit.packing import pack_rows


def test_words_layout() -> None:
    words = pack_rows(np.arange(-8, 8).reshape(2, 8) % 8 - 4, 4)
    words = np.concatenate([words, np.array([0xFFFFFFFF, 0, 1, 2, 3, 4, 5, 6, 7], np.uint32)])
    text = cgen.words("w_l0", words, static=False)
    lines = text.splitlines()
    assert lines[0] == "const uint32_t w_l0[11] = {"
    assert lines[-1] == "};"
    body = lines[1:-1]
    assert [len(re.findall(r"0x[0-9A-F]{8}u,", ln)) for ln in body] == [8, 3]
    assert len({ln.index("0x") for ln in body}) == 1  # columns line up
    parsed = [int(h, 16) for h in re.findall(r"0x([0-9A-F]{8})u", text)]
    assert parsed == words.tolist()


def test_refusals() -> None:
    for bad_name in ("1w", "w-0", "", "w 0", "w;x"):
        with pytest.raises(ValueError, match="not a C identifier"):
            cgen.words(bad_name, np.ones(1, np.uint32))
    with pytest.raises(ValueError, match="empty"):
        cgen.words("w", np.zeros(0, np.uint32))
    with pytest.raises(ValueError, match="does not fit uint32_t"):
        cgen.words("w", np.array([-1]))
    with pytest.raises(ValueError, match="does not fit int8_t"):
        cgen.array("int8_t", "a", [127, 128])
    with pytest.raises(ValueError, match="integer values"):
        cgen.array("int16_t", "a", np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="not a C identifier"):
        cgen.designated({"a b": "1"})


HOSTILE = ['*/ int evil(void) { return 1; } /*', '"; int x = 1; //', "back\\slash\n new line", "tri??/graph",
           "caf\u00e9 \u2603", "\x00nul", "tab\tand\rreturn"]


def test_strings_and_comments_compile_to_what_was_said(tmp_path: Path) -> None:
    """Hostile text in a string literal or a comment compiles to exactly those bytes and no code."""
    src = [cgen.comment("provenance: " + " | ".join(HOSTILE)), "#include <stdio.h>\n",
           cgen.define("NAME", cgen.string_literal(HOSTILE[0]))]
    src.append("static const char *const s[] = {" + ", ".join(cgen.string_literal(h) for h in HOSTILE) + "};\n")
    src.append("int main(void) { unsigned i; for (i = 0; i < sizeof s / sizeof s[0]; ++i) {\n"
               "  const char *p = s[i]; printf(\"%u:\", (unsigned)i); while (*p) printf(\"%02x\", (unsigned char)*p++);"
               " printf(\"\\n\"); } return 0; }\n")
    c = tmp_path / "s.c"
    c.write_text("".join(src))
    exe = tmp_path / "s"
    res = subprocess.run(["cc", *STRICT_CFLAGS, str(c), "-o", str(exe)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    for i, h in enumerate(HOSTILE):
        want = h.encode().split(b"\0")[0]  # a C string ends at NUL: the rest is not code either
        assert out[i] == f"{i}:{want.hex()}", (h, out[i])
    res = subprocess.run(["nm", str(exe)], capture_output=True, text=True, check=True)
    assert "evil" not in res.stdout


def test_designated_initializers_and_int_literals(tmp_path: Path) -> None:
    src = ("#include <stdint.h>\n#include <stdio.h>\n"
           "typedef struct { uint8_t b; int32_t lo; int64_t big; uint64_t ubig; const char *name; } s_t;\n"
           + cgen.struct_value("s_t", "v", {
               "name": cgen.string_literal("x"), "ubig": cgen.int_literal(2**64 - 1, "uint64_t"),
               "big": cgen.int_literal(-(2**63), "int64_t"), "lo": cgen.int_literal(-(2**31), "int32_t"),
               "b": cgen.int_literal(255, "uint8_t")})
           + "int main(void) { printf(\"%u %ld %lld %llu %s\\n\", (unsigned)v.b, (long)v.lo, (long long)v.big,"
             " (unsigned long long)v.ubig, v.name); return 0; }\n")
    c = tmp_path / "d.c"
    c.write_text(src)
    exe = tmp_path / "d"
    res = subprocess.run(["cc", *STRICT_CFLAGS, str(c), "-o", str(exe)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["255", str(-(2**31)), str(-(2**63)), str(2**64 - 1), "x"]
