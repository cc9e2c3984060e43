"""Which precision the hardware makes fast: bf16 where it multiplies bf16 matrices natively, float32 elsewhere.

Training under bf16 keeps float32 master weights (autocast) for full fine-tuning, and holds a frozen LoRA base in
bf16 (adapters and optimizer state stay float32). Losses, BFT's weights and reductions are float32 either way.
"""

import os

import torch


def native_bf16(device: str = "cpu") -> tuple[bool, str]:
    """(whether `device` multiplies bf16 natively, why), for a device type such as "cpu" or "cuda"."""
    if device == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
            return True, f"{torch.cuda.get_device_name()} supports bf16"
        return False, "this GPU has no native bf16"
    if device == "cpu":
        capabilities = torch.cpu.get_capabilities()
        found = [name for name in ("amx_bf16", "avx512_bf16", "sve_bf16", "bf16") if capabilities.get(name)]
        if found:
            return True, f"the CPU multiplies bf16 natively ({found[0]})"
        return False, "the CPU has no native bf16 instructions (no AVX512_BF16, AMX or SVE-BF16)"
    return False, f"bf16 support on {device} is not detected"


def accelerator_available() -> bool:
    """Whether torch sees a GPU or another accelerator (not the CPU)."""
    return torch.cuda.is_available() or any(
        hasattr(getattr(torch, name, None), "is_available") and getattr(torch, name).is_available()
        for name in ("xpu", "npu", "mlu", "musa", "hpu")
    )


def resolve_precision(config) -> None:
    """For a TrainingArguments subclass, before its own `__post_init__`: `bf16=None` becomes whether the device
    multiplies bf16 natively, and CPU runs get `use_cpu` where transformers needs it (bf16 on a CPU; processes
    launched on CPUs, which would otherwise each train alone, never synchronising; DeepSpeed then does not compile
    its CPU communication op, which training does not use). Without an accelerator, DeepSpeed (which accelerate imports
    when a model is saved) is told it runs on the CPU, instead of finding out and warning on every run."""
    if not accelerator_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not accelerator_available():
        config.use_cpu = True
        if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
            _skip_deepspeed_shared_memory_op()
    if config.bf16 is None and not config.fp16:
        on_cpu = config.use_cpu or not accelerator_available()
        config.bf16, _ = native_bf16("cpu" if on_cpu else ("cuda" if torch.cuda.is_available() else "other"))
    if config.bf16 and not accelerator_available():
        config.use_cpu = True


def describe_precision(args) -> str:
    """One line for the log: which precision a run uses, and why."""
    device = args.device.type
    native, why = native_bf16(device)
    if args.bf16:
        return f"bf16 mixed precision (float32 master weights; losses in float32): {why}"
    if args.fp16:
        return "fp16 mixed precision, as configured"
    return f"float32 ({'bf16=false was set' if native else why})"


def _skip_deepspeed_shared_memory_op() -> None:
    """DeepSpeed on CPUs compiles its shared-memory all-reduce (the C++ op `deepspeed_shm_comm`) when its
    communication starts: a C++ compiler is then needed at run time, and the first run waits minutes for it. Only
    DeepSpeed's tensor-parallel inference calls that op; training reduces through torch.distributed (gloo), so it is
    marked unavailable and never built."""
    from bft.upstream import skip_deepspeed_op

    skip_deepspeed_op("deepspeed_shm_comm")
