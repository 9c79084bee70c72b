"""PlatformIO pre-script of every qsnnkit env: the model, the linker script, link flags.

The model folder holds `qsnn_model.h` / `qsnn_model.c` written by the converter
(`qsnn-convert`). It is $QSNN_MODEL_DIR when set, else firmware/models/default (the
committed model). The folder goes on the include path and its C file is built with the
firmware. Also resolves board_build.ldscript relative to the project and puts
firmware/ld on the linker search path (for INCLUDE in the linker scripts), and appends
the env's `custom_linkflags` to the link (build_flags only reach the compiler for flags
such as -nostartfiles or --specs, when a registry platform builds the program).
"""
import os
import re
import sys

Import("env")  # noqa: F821  (SCons/PlatformIO injects Import)

project_dir = env.subst("$PROJECT_DIR")  # noqa: F821
model_dir = os.environ.get("QSNN_MODEL_DIR") or os.path.join(project_dir, "firmware", "models", "default")
model_dir = os.path.abspath(model_dir)
missing = [f for f in ("qsnn_model.h", "qsnn_model.c") if not os.path.isfile(os.path.join(model_dir, f))]
if missing:
    sys.stderr.write(
        f"Error: model folder {model_dir} lacks {', '.join(missing)}.\n"
        "Point QSNN_MODEL_DIR at a folder written by `qsnn-convert` (it holds qsnn_model.h and "
        "qsnn_model.c), or restore firmware/models/default.\n"
    )
    env.Exit(1)  # noqa: F821

print(f"qsnnkit model: {model_dir}")
# The model includes qsnn_core.h: give it the core library's headers too.
env.Append(CPPPATH=[model_dir, os.path.join(project_dir, "firmware", "lib", "qsnn", "include")])  # noqa: F821
env.BuildSources(os.path.join("$BUILD_DIR", "qsnn_model"), model_dir, "+<qsnn_model.c>")  # noqa: F821

# Link only the kernels the model uses: a model without conv layers builds the core
# without them (qsnn_model.h says so in QSNN_MODEL_HAS_CONV, written by the converter).
with open(os.path.join(model_dir, "qsnn_model.h")) as f:
    model_h = f.read()
if "#define QSNN_MODEL_HAS_CONV 0u" in model_h:
    env.Append(CPPDEFINES=["QSNN_NO_CONV"])  # noqa: F821
    print("qsnnkit model: no conv layers, core built without the conv kernels")
if "#define QSNN_MODEL_NARROW_MEM 0u" in model_h:
    env.Append(CPPDEFINES=["QSNN_NO_NARROW_MEM"])  # noqa: F821
    print("qsnnkit model: no 2- or 3-bit membranes, core built without their neuron loops")
# and of those, only the kernels its layers run (QSNN_MODEL_KERNELS, a bit mask; a header from
# before it existed builds every kernel)
kernels = re.search(r"#define QSNN_MODEL_KERNELS (0x[0-9A-Fa-f]+)u", model_h)
if kernels:
    env.Append(CPPDEFINES=[("QSNN_KERNELS_ONLY", kernels.group(1) + "u")])  # noqa: F821
    print(f"qsnnkit model: core built with the kernels in mask {kernels.group(1)} only")
# The bit-plane conv kernel's per-channel sums (two positions, int32) sit on the stack: sized
# to the model's widest such layer (QSNN_MODEL_CONV_COLUMN_ROWS) instead of the spec's 128
# rows, 512 B less stack for a 64-channel layer; the core's kernel check holds layers to it.
conv_rows = re.search(r"#define QSNN_MODEL_CONV_COLUMN_ROWS (\d+)u", model_h)
if conv_rows and int(conv_rows.group(1)) > 0:
    env.Append(CPPDEFINES=[("QSNN_CONV_COLUMN_ROWS", conv_rows.group(1) + "u")])  # noqa: F821
    print(f"qsnnkit model: bit-plane conv sums sized to {conv_rows.group(1)} channels")
# An audio model's requests carry at most one hop of PCM (IDENT announces it, the host obeys):
# the request frame buffer and the receive ring are sized to that, not to the protocol's 1024
# bytes (firmware/include/proto_limits.h). Event models keep the full payload.
if "QSNN_MODEL_INPUT_EVENTS" not in model_h:
    env.Append(CPPDEFINES=[("PROTO_RX_MAX_PAYLOAD", "640u")])  # noqa: F821

env.Append(LIBPATH=[os.path.join(project_dir, "firmware", "ld")])  # noqa: F821
ldscript = env.BoardConfig().get("build.ldscript", "")  # noqa: F821
if ldscript and not os.path.isabs(ldscript) and os.path.isfile(os.path.join(project_dir, ldscript)):
    env.Replace(LDSCRIPT_PATH=os.path.join(project_dir, ldscript))  # noqa: F821

extra_link = env.GetProjectOption("custom_linkflags", "")  # noqa: F821
if extra_link:
    env.Append(LINKFLAGS=extra_link.split())  # noqa: F821
