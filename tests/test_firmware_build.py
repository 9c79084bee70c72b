"""The firmware builds offline: `pio run -e qemu_m4` with no PlatformIO registry, from a
fresh PlatformIO core folder; the Nucleo board (a registry env) still compiles and links
with Debian's arm-none-eabi-gcc -Werror from exactly the sources and flags its env
selects; the portable parts compile for rv32imc and xtensa-lx106 with -Werror."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qsnnkit.paths import FIRMWARE_DIR, QSNN_INCLUDE_DIR, QSNN_SRC_DIR, REPO_ROOT

sys.path.insert(0, str(Path(__file__).resolve().parent))
import firmware_support as fw  # noqa: E402

SRC_DIR = FIRMWARE_DIR / "src"
F405_FLASH, F405_RAM = 1024 * 1024, 128 * 1024
F446_FLASH, F446_RAM = 512 * 1024, 128 * 1024


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not installed (see docs/firmware.md for the Debian packages)")
    return path


def _sections(elf: Path) -> dict[str, tuple[int, int]]:
    """name -> (size, address) from arm-none-eabi-size -A."""
    out = subprocess.run([_need("arm-none-eabi-size"), "-A", "-d", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    secs = {}
    for line in out.splitlines():
        m = re.match(r"^(\.\S+)\s+(\d+)\s+(\d+)", line)
        if m:
            secs[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return secs


def _check_elf(elf: Path, flash: int, ram: int) -> None:
    secs = _sections(elf)
    for name in (".isr_vector", ".text", ".stack", ".bss"):
        assert name in secs, f"{elf.name}: section {name} missing: {secs}"
    assert secs[".isr_vector"][1] == 0x08000000, "vector table must start flash"
    assert secs[".stack"][1] == 0x20000000, "stack must sit at the bottom of RAM"
    flash_used = sum(secs[s][0] for s in (".isr_vector", ".text", ".ARM.exidx", ".data") if s in secs)
    ram_used = sum(secs[s][0] for s in (".stack", ".data", ".bss") if s in secs)
    assert flash_used <= flash and ram_used <= ram, f"flash {flash_used}/{flash}, RAM {ram_used}/{ram}"
    # no floating point anywhere: no FP build attributes, no VFP instruction in the code
    attrs = subprocess.run([_need("arm-none-eabi-readelf"), "-A", str(elf)], capture_output=True, text=True,
                           check=True).stdout
    assert "Tag_FP_arch" not in attrs and "VFP" not in attrs, attrs
    dis = subprocess.run([_need("arm-none-eabi-objdump"), "-d", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    fp = [ln for ln in dis.splitlines() if re.search(r"\tv[a-z]+(\.\S+)?\s", ln)]  # VFP/NEON: all start with v
    assert not fp, f"floating-point instructions in {elf.name}, first: {fp[0]}"


def test_qemu_env_builds_offline_from_a_fresh_core_dir(tmp_path: Path) -> None:
    model = fw.model_dir_for_tests()
    elf, res = fw.build_firmware(model, build_dir=tmp_path / "build", core_dir=tmp_path / "core")
    log = res.stdout + res.stderr
    assert res.returncode == 0, f"pio run -e qemu_m4 failed:\n{log[-4000:]}"
    assert "HTTPClientError" not in log and "registry" not in log.lower(), log[-2000:]
    assert f"qsnnkit model: {model.resolve()}" in log
    assert elf.is_file()
    _check_elf(elf, F405_FLASH, F405_RAM)


def test_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "nomodel"
    empty.mkdir()
    _, res = fw.build_firmware(empty, build_dir=tmp_path / "build")
    assert res.returncode != 0
    assert "lacks qsnn_model.h, qsnn_model.c" in res.stdout + res.stderr


def _env_sources(env: str) -> list[Path]:
    """The files build_src_filter of `env` selects from src_dir (the +<glob>/-<glob> rules)."""
    from platformio.project.config import ProjectConfig

    rules = " ".join(ProjectConfig(str(REPO_ROOT / "platformio.ini")).get(f"env:{env}", "build_src_filter"))
    files: set[Path] = set()
    for sign, pattern in re.findall(r"([+-])<([^>]+)>", rules):
        matched = {p for p in SRC_DIR.glob(pattern) if p.is_file()}
        files = files | matched if sign == "+" else files - matched
    return sorted(p for p in files if p.suffix == ".c")


def _env_cflags(env: str) -> list[str]:
    from platformio.project.config import ProjectConfig

    flags = ProjectConfig(str(REPO_ROOT / "platformio.ini")).get(f"env:{env}", "build_flags")
    return [f for item in flags for f in shlex.split(item)]


def test_nucleo_board_compiles_and_links_with_arm_none_eabi(tmp_path: Path) -> None:
    gcc = _need("arm-none-eabi-gcc")
    srcs = _env_sources("nucleo_f446re")
    names = {p.name for p in srcs}
    assert "nucleo_f446re.c" in names and "qemu_netduinoplus2.c" not in names, names
    cflags = _env_cflags("nucleo_f446re")
    assert {"-std=c99", "-Wall", "-Wextra", "-Werror", "-mfloat-abi=soft"} <= set(cflags), cflags
    model = fw.model_dir_for_tests()
    all_srcs = srcs + sorted(QSNN_SRC_DIR.glob("*.c")) + [model / "qsnn_model.c"]
    elf = tmp_path / "nucleo.elf"
    cmd = [gcc, "-mcpu=cortex-m4", "-mthumb", *cflags, "-ffunction-sections", "-fdata-sections",
           "-I", str(FIRMWARE_DIR / "include"), "-I", str(QSNN_INCLUDE_DIR), "-I", str(model),
           *map(str, all_srcs), "-L", str(FIRMWARE_DIR / "ld"), "-T", str(FIRMWARE_DIR / "ld" / "stm32f446re.ld"),
           "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections", "-o", str(elf)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, " ".join(cmd) + "\n" + res.stderr
    _check_elf(elf, F446_FLASH, F446_RAM)
    syms = subprocess.run([_need("arm-none-eabi-nm"), str(elf)], capture_output=True, text=True, check=True).stdout
    assert " board_init" in syms and " cortex_m_irq" in syms
    assert "HAL_" not in syms  # register-level: no vendor HAL


PORTABLE = [*sorted(QSNN_SRC_DIR.glob("*.c")), SRC_DIR / "proto.c", SRC_DIR / "app.c", SRC_DIR / "main.c"]

CROSS = {
    "rv32imc": ["riscv64-unknown-elf-gcc", "-march=rv32imc", "-mabi=ilp32"],
    "xtensa-lx106": ["xtensa-lx106-elf-gcc", "-mtext-section-literals"],
}


@pytest.mark.parametrize("target", sorted(CROSS))
def test_portable_code_compiles_for_other_isas(target: str, tmp_path: Path) -> None:
    cc, *arch = CROSS[target]
    _need(cc)
    model = fw.model_dir_for_tests()
    assert len(PORTABLE) >= 4, PORTABLE  # core, front end, protocol, app
    for src in PORTABLE + [model / "qsnn_model.c"]:
        obj = tmp_path / (src.stem + ".o")
        cmd = [cc, *arch, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffreestanding",
               "-I", str(FIRMWARE_DIR / "include"), "-I", str(QSNN_INCLUDE_DIR), "-I", str(model),
               "-c", str(src), "-o", str(obj)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, f"{target}: " + " ".join(cmd) + "\n" + res.stderr
        assert obj.stat().st_size > 0


def test_every_board_name_fits_ident() -> None:
    """IDENT carries the board name in a buffer sized by BOARD_NAME_MAX (firmware/src/app.c)."""
    import re as _re

    m = _re.search(r"#define BOARD_NAME_MAX (\d+)u", (REPO_ROOT / "firmware" / "include" / "board.h").read_text())
    assert m, "BOARD_NAME_MAX not found in firmware/include/board.h"
    limit = int(m.group(1))
    names = []
    for f in sorted((REPO_ROOT / "firmware" / "src" / "boards").glob("*.c")):
        names += _re.findall(r'board_info_t board_info = \{"([^"]*)"', f.read_text())
    assert len(names) >= 3 and all(0 < len(n) <= limit for n in names), names


@pytest.mark.parametrize("sanitize", [False, True])
def test_receiver_holds_a_frame_counts_what_comes_meanwhile_and_skips_long_ones(tmp_path: Path, sanitize: bool) -> None:
    """The request receiver (firmware/src/proto.h) on the host, plain and under ASan + UBSan,
    as an interrupt-driven board uses it (no RX ring: the frame buffer is the only copy): the
    largest accepted frame is held whole until released, bytes put while it is held are
    counted as dropped (the device reports RX_OVERFLOW), an over-long frame is reported once
    and skipped, a frame held behind that report is not lost, resync drops a partial frame."""
    exe = tmp_path / "rx"
    flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"] if sanitize else []
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", *flags,
                    "-DPROTO_RX_MAX_PAYLOAD=640", "-I", str(REPO_ROOT / "firmware" / "include"),
                    "-I", str(REPO_ROOT / "firmware" / "src"), str(REPO_ROOT / "tests" / "c" / "rx_main.c"),
                    str(REPO_ROOT / "firmware" / "src" / "proto.c"), "-o", str(exe)], check=True)
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr


@pytest.mark.parametrize("cc", ["gcc", "xtensa-lx106-elf-gcc"])
def test_esp32_board_compiles_against_the_esp_idf_calls_it_declares(cc: str, tmp_path: Path) -> None:
    """The esp32dev board hooks need ESP-IDF (the registry); CI compiles them with -Werror against
    firmware/boards_api/esp-idf/, which declares exactly the ESP-IDF calls they use, for the
    host and for the ESP32's ISA family. The sources ESP-IDF's CMake build lists exist, and are
    the ones the emulated boards run."""
    _need(cc)
    api = FIRMWARE_DIR / "boards_api" / "esp-idf"
    obj = tmp_path / "esp32dev.o"
    cmd = [cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffreestanding",
           "-I", str(FIRMWARE_DIR / "include"), "-I", str(api), "-c", str(SRC_DIR / "boards" / "esp32dev.c"),
           "-o", str(obj)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, " ".join(cmd) + "\n" + res.stderr
    nm = "nm" if cc == "gcc" else "xtensa-lx106-elf-nm"
    syms = subprocess.run([_need(nm), str(obj)], capture_output=True, text=True, check=True).stdout
    undefined = {line.split()[-1] for line in syms.splitlines() if line.split()[0] == "U"}
    declared = {"uart_driver_install", "uart_param_config", "uart_write_bytes", "uart_read_bytes",
                "esp_cpu_get_cycle_count", "esp_restart", "xPortSetInterruptMaskFromISR",
                "vPortClearInterruptMaskFromISR", "uxTaskGetStackHighWaterMark", "main", "_data_start", "_bss_end"}
    assert undefined <= declared, undefined - declared
    cmake = (SRC_DIR / "CMakeLists.txt").read_text()
    for src in ("main.c", "app.c", "proto.c", "boards/esp32dev.c", "qsnn_core.c", "qsnn_frontend.c", "qsnn_detect.c"):
        assert src in cmake, src
    lib_sources = {p.name for p in QSNN_SRC_DIR.glob("*.c")}
    assert lib_sources <= {s.rsplit("/", 1)[-1] for s in cmake.split() if s.endswith(".c")}, lib_sources
