"""A recipe's `build`: the training data, built once by `bft data` builders and reused when built alike."""

from pathlib import Path

from bft.compare import reuse
from bft.errors import InputError


def builds(recipe: dict) -> list[dict]:
    """The recipe's `build`: none, one builder's options, or a list of them."""
    build = recipe.get("build") or []
    return build if isinstance(build, list) else [build]


def build_data(build: dict) -> None:
    """Build the recipe's training data once (`build: {builder: go-naming, output: DIR, ...builder options}`); data
    already built there is reused only if built with the same options (its meta.json says which)."""
    build_fn, out, source, options = resolve_build(build)
    if not (out / "meta.json").exists():
        build_fn(source, out, **options)


def resolve_build(build: dict):
    """(builder function, output folder, data folder, options) of a recipe's build, checked: every option is the
    builder's, and data already built in the output folder was built with these options."""
    from bft.data import data_dir
    from bft.data.builders import BUILDERS, builder_options, check_builder_options

    options = dict(build)
    builder, out = options.pop("builder"), Path(options.pop("output"))
    accepted = builder_options(builder)
    for key, value in options.items():  # `exclude: FILE` is a list of one file, as `--exclude FILE` is
        if isinstance(accepted.get(key), tuple | list) and isinstance(value, str):
            options[key] = [value]
    build_fn, source = BUILDERS[builder], data_dir(options.pop("data_dir", None))
    unknown = [key for key in options if key not in accepted]
    if unknown:
        raise InputError(f"build {builder!r}: unknown option {', '.join(map(repr, unknown))}; its options are "
                         f"{', '.join(accepted) or 'none'}")
    try:
        check_builder_options(builder, {**accepted, **options})
    except InputError as error:
        raise InputError(f"build {builder!r}: {error}") from None
    if (out / "meta.json").exists():
        reuse.check_data(out, builder, {**accepted, **options})
    return build_fn, out, source, options
