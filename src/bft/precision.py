"""Which precision the hardware makes fast: bf16 where it multiplies bf16 matrices natively, float32 elsewhere.

Training under bf16 keeps float32 master weights (autocast) for full fine-tuning, and holds a frozen LoRA base in
bf16 (adapters and optimizer state stay float32). Losses, BFT's weights and reductions are float32 either way.
"""

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
