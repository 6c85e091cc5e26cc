"""The machine a speed figure was measured on: CPU model, instruction sets, library versions, load.

Every benchmark records `machine_info()` beside its figures, so figures from different
machines (AVX2-only vs AVX-512/AMX CPUs) or from a loaded machine are never mixed up.

Example:
    >>> info = machine_info()
    >>> sorted(k for k in ("cpu", "cores", "isa", "onnxruntime", "load_average") if k in info)
    ['cores', 'cpu', 'isa', 'load_average', 'onnxruntime']
"""
from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from glirel_runtime.engines import cpu_flags  # noqa: E402

# flag in /proc/cpuinfo → how the tables name it
ISA_NAMES = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI",
             "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16", "amx_int8": "AMX-INT8"}
HIGH_LOAD_PER_CORE = 0.5
"""1-minute load average per core above which speed ratios are not trusted (other processes take cores)."""


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name (`platform.processor()` where /proc/cpuinfo is missing).

    Example:
        >>> isinstance(cpu_model(), str)
        True
    """
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def isa(flags: Optional[frozenset[str]] = None) -> list[str]:
    """The vector / matrix instruction sets that matter for fp32, int8 and bf16 kernels.

    Example:
        >>> isa(frozenset({"avx2", "fma", "avx512f", "avx512_vnni", "amx_int8"}))
        ['AVX2', 'AVX-512', 'AVX512-VNNI', 'AMX-INT8']
    """
    flags = cpu_flags() if flags is None else flags
    return [name for flag, name in ISA_NAMES.items() if flag in flags]


def load_average() -> tuple[float, float, float]:
    """The 1-, 5- and 15-minute load averages ((-1, -1, -1) where the OS has none)."""
    try:
        return tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[return-value]
    except OSError:
        return (-1.0, -1.0, -1.0)


def version(package: str) -> Optional[str]:
    """An installed package's version without importing it (None when not installed)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, cores, instruction sets, library versions and load average, for a results file."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "isa": isa(), "load_average": load_average(),
            "onnxruntime": version("onnxruntime") or version("onnxruntime-gpu"), "openvino": version("openvino"),
            "torch": version("torch"), "python": platform.python_version(), "platform": platform.platform()}


def high_load_warning(info: Optional[dict[str, Any]] = None) -> Optional[str]:
    """A warning when the 1-minute load average is high for this many cores, else None.

    Example:
        >>> high_load_warning({"load_average": (3.0, 2.0, 1.0), "cores": 2})[:30]
        'load average 3.00 on 2 cores: '
        >>> high_load_warning({"load_average": (0.1, 0.1, 0.1), "cores": 2}) is None
        True
    """
    info = info or {"load_average": load_average(), "cores": os.cpu_count() or 1}
    load, cores = info["load_average"][0], info["cores"] or 1
    if load > HIGH_LOAD_PER_CORE * cores:
        return (f"load average {load:.2f} on {cores} cores: other processes are using the CPU, so these figures are "
                f"slower and their ratios to glirel are inflated (glirel slows more under contention); "
                f"measure again when the machine is idle")
    return None


def describe(info: dict[str, Any]) -> str:
    """One line for a table's caption.

    Example:
        >>> describe({"cpu": "Xeon", "cores": 2, "isa": ["AVX2"], "onnxruntime": "1.32.0", "openvino": None,
        ...           "load_average": (0.2, 0.3, 0.4)})
        'Xeon, 2 cores (AVX2); onnxruntime 1.32.0; load average 0.20 / 0.30 / 0.40'
    """
    parts = [f"{info['cpu']}, {info['cores']} cores ({', '.join(info['isa']) or 'no AVX2'})", f"onnxruntime {info['onnxruntime']}"]
    if info.get("openvino"):
        parts.append(f"OpenVINO {info['openvino']}")
    parts.append("load average " + " / ".join(f"{x:.2f}" for x in info["load_average"]))
    return "; ".join(parts)


def announce_machine() -> dict[str, Any]:
    """Print this machine's one-line description (and, to stderr, a warning when it is busy); return
    `machine_info()` for the results.

    Example:
        >>> info = announce_machine()  # doctest: +SKIP
        machine: Intel(R) Xeon(R) Processor, 2 cores (AVX2, AVX-512, …); onnxruntime 1.32.0; load average …
    """
    information = machine_info()
    print(f"machine: {describe(information)}")
    warning = high_load_warning(information)
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    return information


if __name__ == "__main__":  # python -m benchmarks.machine
    import json

    print(json.dumps(announce_machine(), indent=2))
