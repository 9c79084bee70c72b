"""The two int8 runtimes the baseline is measured with: LiteRT (``ai-edge-litert``, the
maintained successor of ``tflite-runtime``) and TensorFlow Lite Micro's Python interpreter
(``tflite-micro``, the microcontroller kernels compiled for the host). Neither imports
TensorFlow. Inputs are the project's uint8 features; outputs are the int8 logits."""
from __future__ import annotations

import os
import re
import tempfile

import numpy as np

from qsnnkit.baseline.kwsdata import INPUT_SCALE, as_int8


def _check_input(details: dict) -> None:
    q = details["quantization_parameters"]
    scale, zero = float(q["scales"][0]), int(q["zero_points"][0])
    if details["dtype"] != np.int8 or abs(scale - INPUT_SCALE) > 1e-9 or zero != 0:
        raise ValueError(f"the int8 model must take its input at scale {INPUT_SCALE}, zero point 0 (feature - 128); "
                         f"it takes "
                         f"{np.dtype(details['dtype']).name} at scale {scale}, zero point {zero}")


#: LiteRT's kernel choices: its default (the XNNPACK delegate where it applies) and its
#: built-in optimised kernels without delegates (which give TFLM's int8 outputs bit for bit)
LITERT_KERNELS = ("xnnpack", "builtin")


class LiteRT:
    """ai_edge_litert's interpreter, one thread, XNNPACK (its default) or its built-in kernels."""

    def __init__(self, flatbuffer: bytes, threads: int = 1, kernels: str = "xnnpack") -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        if kernels not in LITERT_KERNELS:
            raise ValueError(f"LiteRT kernels: one of {', '.join(LITERT_KERNELS)}, got {kernels!r}")
        resolver = OpResolverType.AUTO if kernels == "xnnpack" else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.kernels = kernels
        self.interp = Interpreter(model_content=flatbuffer, num_threads=threads,
                                  experimental_op_resolver_type=resolver)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        _check_input(self.inp)

    def outputs(self, feats: np.ndarray) -> np.ndarray:
        """int8 [N, classes] logits of uint8 [N, 49, 40] features."""
        x = as_int8(feats)
        res = np.empty((len(x), self.out["shape"][-1]), np.int8)
        for i in range(len(x)):
            self.interp.set_tensor(self.inp["index"], x[i:i + 1])
            self.interp.invoke()
            res[i] = self.interp.get_tensor(self.out["index"])[0]
        return res

    def predict(self, feats: np.ndarray) -> np.ndarray:
        return self.outputs(feats).argmax(1)


class TFLM:
    """TensorFlow Lite Micro's interpreter (reference kernels on the host)."""

    def __init__(self, flatbuffer: bytes, arena_size: int = 256 * 1024) -> None:
        from tflite_micro.python.tflite_micro import runtime

        self.interp = runtime.Interpreter.from_bytes(flatbuffer, arena_size=arena_size)
        self.inp = self.interp.get_input_details(0)
        self.out = self.interp.get_output_details(0)
        _check_input(self.inp)

    def outputs(self, feats: np.ndarray) -> np.ndarray:
        x = as_int8(feats)
        res = np.empty((len(x), self.out["shape"][-1]), np.int8)
        for i in range(len(x)):
            self.interp.set_input(x[i:i + 1], 0)
            self.interp.invoke()
            res[i] = self.interp.get_output(0)[0]
        return res

    def predict(self, feats: np.ndarray) -> np.ndarray:
        return self.outputs(feats).argmax(1)

    def arena_used(self) -> int:
        """Bytes of the tensor arena in use after an inference, as TFLM's recording allocator
        reports them (it prints to the C stderr, so the file descriptor is captured)."""
        with tempfile.TemporaryFile() as f:
            saved = os.dup(2)
            try:
                os.dup2(f.fileno(), 2)
                self.interp.print_allocations()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            f.seek(0)
            text = f.read().decode(errors="replace")
        m = re.search(r"Arena allocation total (\d+) bytes", text)
        if m is None:
            raise RuntimeError(f"TFLM did not report its arena use; it printed: {text[:500]!r}")
        return int(m.group(1))
