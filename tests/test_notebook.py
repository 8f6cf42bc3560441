"""examples/vae_study.ipynb: stored without outputs, on the public API only, and every cell runs,
both training its own (smoke-size) study and pointed at that finished study folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import vaelab

from .needs import need_module

nbformat = need_module("nbformat", "nbformat is in the dev extra: pip install -e '.[dev]'")
nbclient = need_module("nbclient", "nbclient is in the dev extra: pip install -e '.[dev]'")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "vae_study.ipynb"


def _code(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = _code(nb)
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    for name in ("VAELAB_NOTEBOOK_SMALL", "VAELAB_NOTEBOOK_STUDY"):
        assert name in code[0].source


def test_notebook_uses_only_the_public_api():
    """`import vaelab` and `vaelab.<name>` for names in vaelab.__all__, nothing deeper."""
    source = "\n".join(c.source for c in _code(nbformat.read(NOTEBOOK, as_version=4)))
    imports = re.findall(r"^\s*(?:from|import)\s+(vaelab\S*)", source, re.M)
    assert imports == ["vaelab"], imports
    used = set(re.findall(r"\bvaelab\.(\w+)", source))
    assert used <= {*vaelab.__all__}, used - {*vaelab.__all__}


def _execute(tmp_path: Path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    resources = {"metadata": {"path": str(tmp_path)}}
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources=resources)
    client.execute()  # raises CellExecutionError naming the cell on any failure
    outputs = [o for c in _code(nb) for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    return text, images


@pytest.mark.slow
def test_notebook_runs_end_to_end_small(tmp_path, monkeypatch, mnist_arrays):
    study = tmp_path / "study"
    monkeypatch.setenv("VAELAB_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("VAELAB_NOTEBOOK_OUT", str(study))
    monkeypatch.delenv("VAELAB_NOTEBOOK_STUDY", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # the kernel imports the vaelab these tests import, whatever its working directory
    src = str(Path(vaelab.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    text, images = _execute(tmp_path)
    # data, AE reconstructions and samples, four models' grids, rate–distortion, map, paths
    assert len(images) >= 10
    assert "chosen β = " in text and "lowest classifier confidence" in text
    assert "the smoke study" in text and f"vaelab explore {study}" in text
    assert "trained the AE" in text  # the notebook's own vaelab.train
    tuned = re.search(r"tuned VAE β=(\S+)", text)
    assert tuned, text
    for run in ("ae", "vae_beta0", "vae_beta10", f"beta_{tuned.group(1)}_tuned"):
        assert (study / "runs" / run / "DONE").is_file(), run
    assert (study / "study.json").is_file()

    # the same notebook pointed at the finished study trains nothing
    monkeypatch.setenv("VAELAB_NOTEBOOK_STUDY", str(study))
    monkeypatch.setenv("VAELAB_NOTEBOOK_OUT", str(tmp_path / "unused"))
    before = sorted(p.name for p in (study / "runs").iterdir())
    text, images = _execute(tmp_path)
    assert len(images) >= 10 and "chosen β = " in text and "trained the AE" not in text
    assert sorted(p.name for p in (study / "runs").iterdir()) == before
    assert not (tmp_path / "unused").exists()
