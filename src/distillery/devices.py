"""Where the student runs, and in what precision it trains.

A Recipe's `still.device` and the `--device` of `predict` and `serve` name one of DEVICES.
`auto` takes the best one present (CUDA, then Apple's MPS, then the CPU). A device that is
named but not present is refused, never replaced by the CPU: a run that quietly trains fifty
times slower than its author planned is worse than one that stops and says why.
"""

from __future__ import annotations

from pathlib import Path

import torch

from distillery.errors import DistilleryError

DEVICES = ("auto", "cpu", "cuda", "mps")


def present() -> list[str]:
    """The device kinds this machine has, best first (the CPU is always there)."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if torch.backends.mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def resolve(name: str, local_rank: int = 0, where: str = "still.device") -> torch.device:
    """The torch device `name` means here; `local_rank` picks one GPU per process of a launcher.

    `where` names the setting in the message when the device is not present (exit 2).
    """
    if name not in DEVICES:
        raise DistilleryError(f"{where}: {name!r} is not a device. Fix: use one of {', '.join(DEVICES)}.")
    here = present()
    kind = here[0] if name == "auto" else name
    if kind not in here:
        raise DistilleryError(f"{where}: {kind} is not present on this machine (it has: {', '.join(here)}). "
                              f"Fix: set it to auto (the best present, here {here[0]}) or to one of "
                              f"{', '.join(here)}.")
    if kind == "cuda":
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(kind)


def cpu_has_bf16() -> bool:
    """Whether the CPU has bf16 instructions (without them bf16 is emulated, and slower than fp32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(precision: str, device: torch.device | str = "cpu") -> bool:
    """Whether the Still autocasts to bf16: `precision` bf16 or fp32 says so; `auto` takes bf16
    where the device has it in hardware (GPUs that support it, CPUs with bf16 instructions).

    MPS stays fp32 under `auto`: its bf16 autocast depends on the macOS version.
    """
    if precision != "auto":
        return precision == "bf16"
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_bf16_supported()
    return kind == "cpu" and cpu_has_bf16()
