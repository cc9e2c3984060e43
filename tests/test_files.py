"""Atomic outputs (`bft.files`): as readable as any file the user writes, and written where they are asked to be."""

import json
import os
import stat

import numpy as np
import pytest

from bft.errors import InputError
from bft.files import atomic_output, output_file, staging_folder, write_json_atomic, write_jsonl_atomic


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_outputs_get_the_mode_a_plain_open_gives(tmp_path, umask):
    (tmp_path / "plain.json").write_text("{}")
    write_json_atomic(tmp_path / "out" / "results.json", {})
    with atomic_output(tmp_path / "vectors.npy") as handle:
        np.save(handle, np.zeros(2))
    assert mode(tmp_path / "out" / "results.json") == mode(tmp_path / "vectors.npy") == mode(tmp_path / "plain.json")
    assert mode(tmp_path / "plain.json") == 0o666 & ~umask
    (tmp_path / "plain").mkdir()
    folder = staging_folder(tmp_path / "models" / "converted")
    assert folder.parent == tmp_path / "models" and folder.is_dir() and not any(folder.iterdir())
    assert mode(folder) == mode(tmp_path / "plain") == 0o777 & ~umask


def test_writers_that_add_a_suffix_to_a_file_name_write_the_output_itself(tmp_path):
    with atomic_output(tmp_path / "emb") as handle:  # np.savez adds .npz to a name, never to an open file
        np.savez(handle, X=np.arange(3))
    assert [path.name for path in tmp_path.iterdir()] == ["emb"]
    np.testing.assert_array_equal(np.load(tmp_path / "emb")["X"], np.arange(3))


def test_an_output_file_name_must_end_in_its_suffix_and_name_no_folder(tmp_path):
    (tmp_path / "folder.npz").mkdir()
    for name, expected in (("emb", "expected the name of a file ending in .npz"), ("emb.txt", "ending in .npz"),
                           (f"{tmp_path}/dir.npz/", "names a folder"), (tmp_path / "folder.npz", "names a folder")):
        with pytest.raises(InputError, match=expected):
            output_file(name, ".npz")
    assert output_file("EMB.NPZ", ".npz").name == "EMB.NPZ"


def test_json_outputs_are_strict_json(tmp_path):
    """An interval of one seed or a diverged loss is NaN or infinite in Python, which json writes as NaN/Infinity:
    no strict parser (JavaScript's, jq, Go's) reads that. Written as null instead."""
    data = {"mean": 0.5, "ci_low": float("nan"), "rows": [float("inf"), -float("inf"), 1], "nested": ({"x": 2.0},)}
    write_json_atomic(tmp_path / "a.json", data)
    write_jsonl_atomic(tmp_path / "b.jsonl", [data])
    expected = {"mean": 0.5, "ci_low": None, "rows": [None, None, 1], "nested": [{"x": 2.0}]}
    for text in ((tmp_path / "a.json").read_text(), (tmp_path / "b.jsonl").read_text()):
        assert json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} written")) == expected
