"""examples/vae_study.ipynb: stored without outputs, and every cell runs (tiny settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .needs import need_module

nbformat = need_module("nbformat", "nbformat is in the dev extra: pip install -e '.[dev]'")
nbclient = need_module("nbclient", "nbclient is in the dev extra: pip install -e '.[dev]'")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "vae_study.ipynb"


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "VAELAB_NOTEBOOK_SMALL" in code[0].source


@pytest.mark.slow
def test_notebook_runs_end_to_end_small(tmp_path, monkeypatch, mnist_arrays):
    monkeypatch.setenv("VAELAB_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("VAELAB_NOTEBOOK_OUT", str(tmp_path / "runs"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the cell on any failure
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 8  # data, reconstructions, samples ×4, search, map, interpolation
    assert "chosen β = " in text and "lowest classifier confidence" in text
    assert f"vaelab explore {tmp_path / 'runs' / 'ae'}" in text
    for run in ("ae", "vae_beta1", "vae_beta0", "vae_beta10", "beta_0.1"):
        assert (tmp_path / "runs" / run / "DONE").is_file(), run
