"""A recipe's `build`: the training data, built once by `bft data` builders and reused when built alike."""

from pathlib import Path

from bft.compare import reuse
from bft.errors import InputError


def builds(recipe: dict) -> list[dict]:
    """The recipe's `build`: none, one builder's options, or a list of them."""
    build = recipe.get("build") or []
    return build if isinstance(build, list) else [build]


def check_builds(recipe: dict, path) -> None:
    """Raise InputError, starting with the recipe's `path`, for a build of the recipe that `resolve_build` refuses
    or, where its data is still to be built, whose data folder lacks an input (`bft.data.builders.check_inputs`):
    before anything runs."""
    from bft.data.builders import check_inputs

    for build in builds(recipe):
        try:
            _, out, source, _ = resolve_build(build)
            if not (out / "meta.json").exists():
                check_inputs(build["builder"], source)
        except InputError as error:
            raise InputError(f"{path}: {error}") from None


def build_data(build: dict) -> None:
    """Build the recipe's training data once (`build: {builder: go-naming, output: DIR, ...builder options}`); data
    already built there is reused only if built with the same options (its meta.json says which). Raises InputError
    as `resolve_build` does, and for bad input found while building."""
    from bft.data.builders import build as run_builder

    builder, out, source, options = resolve_build(build)
    if not (out / "meta.json").exists():
        run_builder(builder, source, out, **options)


def resolve_build(build: dict):
    """(builder name, output folder, data folder, options) of a recipe's build, checked: every option is the
    builder's, and data already built in the output folder was built with these options. Raises InputError, naming
    the builder, for a build that is no mapping with `builder` and `output`, an unknown builder or option, a value
    out of range, or data built otherwise in its output folder."""
    from bft.data import data_dir
    from bft.data.builders import builder_options, check_builder_options

    if not isinstance(build, dict) or "builder" not in build or "output" not in build:
        raise InputError(f"build: expected a mapping with builder, output and the builder's options, got {build!r}")
    options = dict(build)
    builder, out = options.pop("builder"), Path(options.pop("output"))
    try:
        accepted = builder_options(builder)
    except InputError as error:
        raise InputError(f"build: {error}") from None
    for key, value in options.items():  # `exclude: FILE` is a list of one file, as `--exclude FILE` is
        if isinstance(accepted.get(key), tuple | list) and isinstance(value, str):
            options[key] = [value]
    source = data_dir(options.pop("data_dir", None))
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
    return builder, out, source, options
