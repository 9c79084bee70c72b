"""One definition for what Python and C share (qsnnkit/spec.py): the generated headers are
up to date, every struct Python mirrors has C's size and offsets, and the protocol's Python
side follows the same layouts as the device's."""
from __future__ import annotations

import ctypes as ct
import re
import subprocess
from pathlib import Path

import pytest

from qsnnkit import ccore, events, frontend, generated, protocol, spec
from qsnnkit.clib import STRICT_CFLAGS
from qsnnkit.paths import FIRMWARE_DIR, QSNN_INCLUDE_DIR

#: Every ctypes mirror of a C struct: C type name -> (ctypes class, header that declares it).
MIRRORS: dict[str, tuple[type[ct.Structure], str]] = {
    "qsnn_layer_t": (ccore._Layer, "qsnn_core.h"),
    "qsnn_model_t": (ccore._Model, "qsnn_core.h"),
    "qsnn_state_t": (ccore._State, "qsnn_core.h"),
    "qsnn_fe_state_t": (frontend.FeState, "qsnn_frontend.h"),
    "qsnn_ev_cfg_t": (events.EvCfg, "qsnn_events.h"),
    "qsnn_ev_state_t": (events.EvState, "qsnn_events.h"),
    "qsnn_ev_stats_t": (events.EvStats, "qsnn_events.h"),
}


def test_generated_headers_are_up_to_date() -> None:
    assert generated.stale() == [], "stale generated headers: run python -m qsnnkit.generated --write"
    assert generated.main(["--check"]) == 0


def test_check_names_a_stale_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "x.h"
    fake.write_text("/* edited by hand */\n")
    monkeypatch.setattr(generated, "GENERATED", {fake: lambda: "/* generated */\n"})
    assert generated.main(["--check"]) == 1
    assert str(fake) in capsys.readouterr().err


def _c_layouts(tmp_path: Path) -> dict[str, list[int]]:
    """sizeof and each field's offsetof, as the host C compiler lays the structs out."""
    headers = sorted({h for _, h in MIRRORS.values()})
    lines = ["#include <stddef.h>", "#include <stdio.h>", *[f'#include "{h}"' for h in headers], "int main(void) {"]
    for cname, (cls, _) in MIRRORS.items():
        offs = " ".join("%zu" for _ in cls._fields_)
        args = ", ".join(f"offsetof({cname}, {f[0]})" for f in cls._fields_)
        lines.append(f'    printf("{cname} %zu {offs}\\n", sizeof({cname}), {args});')
    lines += ["    return 0;", "}"]
    src = tmp_path / "layouts.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layouts"
    res = subprocess.run(["cc", *STRICT_CFLAGS, "-I", str(QSNN_INCLUDE_DIR), str(src), "-o", str(exe)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr  # a field Python names that C lacks fails here
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return {ln.split()[0]: [int(v) for v in ln.split()[1:]] for ln in out.splitlines()}


def test_ctypes_mirrors_match_c_sizeof_and_offsetof(tmp_path: Path) -> None:
    c = _c_layouts(tmp_path)
    for cname, (cls, _) in MIRRORS.items():
        py = [ct.sizeof(cls)] + [getattr(cls, f[0]).offset for f in cls._fields_]
        assert py == c[cname], f"{cname}: ctypes (sizeof, offsets) {py} != C {c[cname]}"


def test_ctypes_mirrors_name_every_c_field() -> None:
    """Same field names in the same order as the C declaration (a field C added in padding
    would keep sizeof and every named offset)."""
    for cname, (cls, header) in MIRRORS.items():
        text = (QSNN_INCLUDE_DIR / header).read_text()
        m = re.search(r"typedef struct \{([^{}]*)\}\s*" + cname + ";", text)
        assert m, f"{cname} not found in {header}"
        body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
        names = [re.findall(r"(\w+)\s*(?:\[[^\]]*\])?\s*$", decl.strip())[0] for decl in body.split(";") if decl.strip()]
        assert names == [f[0] for f in cls._fields_], f"{cname}: C fields {names}"


def test_protocol_python_side_follows_the_spec() -> None:
    assert protocol.PROTOCOL_VERSION == spec.PROTOCOL_VERSION
    assert protocol.Msg is spec.Msg and protocol.Err is spec.Err  # one definition
    # ids and codes travel as u8 (a frame's type, ERROR's code and offending type), each with a meaning
    assert all(0 < int(m) <= 0xFF and m.meaning for m in [*spec.Msg, *spec.Err])
    assert spec.MESSAGES["AUDIO_PACKED"] == (0x0A, spec.Msg.AUDIO_PACKED.meaning)
    ident_fields = set(protocol.Ident.__dataclass_fields__)
    assert set(spec.LAYOUTS["IDENT"].names) - {"reserved"} <= ident_fields  # reserved: always 0, not kept
    result_fields = set(protocol.Result.__dataclass_fields__) | {"n_classes"}
    assert set(spec.LAYOUTS["RESULT"].names) <= result_fields
    for lay in spec.LAYOUTS.values():
        assert len({f.name for f in lay.fields}) == len(lay.fields), f"{lay.message}: duplicate field"
        assert lay.message in spec.MESSAGES
    ids = [v[0] for v in spec.MESSAGES.values()]
    assert len(set(ids)) == len(ids)
    assert all((mid >= 0x80) == (name in {"IDENT", "ACK", "RESULT", "STREAM", "ERROR"}) for name, (mid, _) in spec.MESSAGES.items())


def test_device_code_uses_generated_layouts_not_magic_offsets() -> None:
    """app.c (and proto.c, which parses AUDIO_PACKED) read and write payloads only through
    proto_spec.h's offsets and sizes."""
    text = (FIRMWARE_DIR / "src" / "app.c").read_text() + (FIRMWARE_DIR / "src" / "proto.c").read_text()
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    code = re.sub(r"static size_t put_str\(.*?\n\}\n", "", code, flags=re.S)  # a string's own length byte
    assert "send_ident" in code
    magic = re.findall(r"put_u(?:16|32|64)\([pq] \+ \d+|[pq]\[\d+u?\]|\b(?:40|44)u\b", code)
    assert magic == [], f"hand-written payload offsets in app.c: {magic}"
    for lay in spec.LAYOUTS.values():
        assert f"{lay.message}_HEAD_BYTES" in code or lay.message == "HELLO" and "HELLO_HEAD_BYTES" in code


def test_exit_codes_and_counter_units_come_from_the_spec() -> None:
    assert protocol.COUNTER_UNITS == {v[0]: k.lower() for k, v in spec.COUNTER_UNITS.items()}
    assert spec.exit_meaning(spec.EXIT_CODES["FAULT"][0]) == "a fault handler ran"
    assert spec.exit_meaning(99) == ""
    cm = (FIRMWARE_DIR / "src" / "cortex_m" / "cortex_m.h").read_text()
    assert not re.search(r"#define\s+EXIT_", cm), "exit codes are defined in qsnnkit/spec.py only"


def test_no_shared_constant_is_written_by_hand_twice() -> None:
    """The C sources define none of the spec's names themselves (they come from the generated
    headers), and the Python package spells no front-end geometry outside spec.py."""
    spec_names = set(re.findall(r"#define (\w+)", generated.render_spec_header() + generated.render_proto_header()))
    hand_written = [p for p in (FIRMWARE_DIR / "src").rglob("*.[ch]")] + [
        p for p in (FIRMWARE_DIR / "include").glob("*.h") if p != generated.PROTO_HEADER] + [
        p for p in QSNN_INCLUDE_DIR.glob("*.h") if p not in generated.GENERATED] + list(
        (QSNN_INCLUDE_DIR.parent / "src").glob("*.c"))
    for p in hand_written:
        defined = set(re.findall(r"#define (\w+)", p.read_text()))
        assert not defined & spec_names, f"{p} redefines {defined & spec_names}"
