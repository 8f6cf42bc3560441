"""Property-based tests: every generated config, TOML document and IDX file either works or is
refused with one `VaelabError` line; nothing ever escapes as another exception or a traceback.

Kept fast (modest example counts, no deadline): the whole file runs in well under 30 s.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bad_inputs import assert_one_line, idx_files, run_main, write_folder
from vaelab.config import OPTIONS, TrainConfig, load_toml
from vaelab.data.sources import FILES, decode_idx
from vaelab.errors import ConfigError, DataError, VaelabError
from vaelab.study import make_config

FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Values of every kind a TOML file, a JSON file or a careless caller can hand over.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "ae",
            "vae",
            "gaussian",
            "bernoulli",
            "none",
            "dynamic",
            "bf16",
            "cpu",
            "cuda:0",
            "idx",
            "mnist",
            "auto",
            "",
        ]
    ),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=6),
    st.dictionaries(st.text(max_size=4), scalars, max_size=2),
)
TRAIN_FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]
STUDY_FIELDS = [name for name in OPTIONS if name != "preset"]


@FAST
@given(st.dictionaries(st.sampled_from([*TRAIN_FIELDS, "betta"]), values, max_size=6))
def test_train_config_values_validate_or_refuse(fields):
    try:
        cfg = TrainConfig.from_dict(fields).validate()
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    # accepted: then every value has its declared type and every number is finite
    assert isinstance(cfg.beta, float) and math.isfinite(cfg.beta) and cfg.beta >= 0
    assert isinstance(cfg.norm, bool) and isinstance(cfg.epochs, int) and cfg.epochs >= 1
    assert all(type(c) is int and c >= 1 for c in cfg.channels) and len(cfg.channels) == 4
    assert 0 <= cfg.seed < 2**32


@FAST
@given(
    st.sampled_from(["default", "course", "quick", "full", "smoke", "huge", 3]),
    st.dictionaries(st.sampled_from([*STUDY_FIELDS, "bogus"]), values, max_size=4),
)
def test_study_config_values_validate_or_refuse(preset, overrides):
    try:
        cfg = make_config(preset, **overrides)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    assert cfg.preset in ("default", "course", "smoke") and all(b > 0 for b in cfg.decades)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return (
            "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        )
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v if x is not None) + "]"
    return "{}"


@FAST
@given(
    st.dictionaries(st.sampled_from([*TRAIN_FIELDS, "extra"]), values, max_size=6),
    st.booleans(),
    st.binary(max_size=12),
)
def test_toml_documents_load_or_refuse(tmp_path_factory, fields, table, junk):
    path = tmp_path_factory.mktemp("toml") / "c.toml"
    lines = [f"{k} = {_toml_value(v)}" for k, v in fields.items() if v is not None]
    text = ("[train]\n" if table else "") + "\n".join(lines) + "\n"
    path.write_bytes(text.encode() + (junk if junk and junk[0] % 3 == 0 else b""))
    try:
        cfg = TrainConfig.from_dict(load_toml(path), source=str(path)).validate()
    except ConfigError as e:
        assert "\n" not in str(e).strip()
        return
    # accepted: then no unknown field, and the config holds exactly what the document says
    assert fields.get("extra") is None  # a None value is not written to the document
    for name, value in fields.items():
        if value is not None:
            got = getattr(cfg, name)
            assert (list(got) if isinstance(got, tuple) else got) == _as_written(value), name


def _as_written(v):
    """The value `_toml_value(v)` writes: None dropped from lists, a table always empty."""
    if isinstance(v, list):
        return [x for x in v if x is not None]
    return {} if isinstance(v, dict) else v


# --------------------------------------------------------------------------- IDX files
headers = st.builds(
    lambda magic0, dtype, ndim, dims, body: (
        bytes([magic0 >> 8, magic0 & 0xFF, dtype, ndim])
        + struct.pack(f">{len(dims)}I", *dims)
        + body
    ),
    st.sampled_from([0, 0, 0, 1, 0x1F8B]),
    st.sampled_from([0x08, 0x08, 0x09, 0x0D]),
    st.integers(0, 6),
    st.lists(st.integers(0, 40), max_size=5),
    st.binary(max_size=400),
)


@FAST
@given(st.one_of(headers, st.binary(max_size=64)))
def test_decode_idx_parses_or_refuses(raw):
    try:
        arr = decode_idx(raw)
    except DataError as e:
        assert "\n" not in str(e)
        return
    assert arr.dtype == np.uint8 and arr.size == len(raw) - 4 - 4 * arr.ndim


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    which=st.sampled_from(FILES),
    mutation=st.sampled_from(["header", "truncate", "extend", "flip", "gzip-cut", "replace"]),
    position=st.integers(0, 10_000),
    payload=st.one_of(headers, st.binary(max_size=64)),
)
def test_idx_folders_through_the_cli(tmp_path_factory, capsys, which, mutation, position, payload):
    """A whole folder with one mutated file through `vaelab data info` and the train checks."""
    files = idx_files(n_train=24, n_test=6)
    raw = files[which]
    if mutation == "header":
        raw = payload[:16] + raw[16:]
    elif mutation == "truncate":
        raw = raw[: position % len(raw)]
    elif mutation == "extend":
        raw = raw + payload
    elif mutation == "flip":
        b = bytearray(raw)
        b[position % len(b)] ^= 0xFF
        raw = bytes(b)
    elif mutation == "replace":
        raw = payload
    folder = write_folder(tmp_path_factory.mktemp("idx"), files, gz=False)
    if mutation == "gzip-cut":
        packed = gzip.compress(raw)
        (folder / which).write_bytes(packed[: max(10, position % len(packed))])
    else:
        (folder / which).write_bytes(raw)
    rc, _, err = run_main(["data", "info", "--dataset", "idx", "--data-dir", str(folder)], capsys)
    if rc != 0:
        assert_one_line(rc, err, None)
    from vaelab.data import load_arrays
    from vaelab.train import preflight

    try:
        arrays = load_arrays("idx", folder)
        preflight.check_splits(arrays, TrainConfig(dataset="idx", data_dir=str(folder)), "d")
    except VaelabError as e:
        assert "\n" not in str(e)


def test_untouched_folder_is_accepted(tmp_path, capsys):
    """Anchor for the test above: without a mutation the folder passes every check."""
    folder = write_folder(tmp_path / "idx", idx_files(n_train=24, n_test=6), gz=False)
    rc, out, err = run_main(["data", "info", "--dataset", "idx", "--data-dir", str(folder)], capsys)
    assert rc == 0 and "24 images" not in err and "train+val" in out, err
    from vaelab.data import load_arrays
    from vaelab.train import preflight

    arrays = load_arrays("idx", folder)
    preflight.check_splits(arrays, TrainConfig(dataset="idx", data_dir=str(folder)), "d")


@pytest.fixture(autouse=True)
def _quiet_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VAELAB_HOME", str(tmp_path_factory.mktemp("home")))
