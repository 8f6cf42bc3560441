import subprocess
import sys

import torch

from vaelab import __version__
from vaelab.cli import main
from vaelab.report.figures import make_grid


def test_make_grid_layout():
    x = torch.zeros(5, 1, 3, 3)
    x[4] = 1.0
    g = make_grid(x, nrow=2, padding=1, pad_value=0.5)
    assert g.shape == (1, 3 * 4 + 1, 2 * 4 + 1)
    assert g[0, 9:12, 1:4].min() == 1.0  # fifth image: third row, first column
    assert g[0, 0, 0] == 0.5


def test_version_and_help(capsys):
    out = subprocess.run(
        [sys.executable, "-m", "vaelab", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"vaelab {__version__}"
    assert main([]) == 0
    assert "data" in capsys.readouterr().out


def test_unknown_dataset_is_one_line_error(capsys):
    assert main(["data", "info", "--dataset", "cifar"]) == 2  # a usage error
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "vaelab: error: unknown dataset 'cifar'; choose one of mnist, fashion-mnist, idx, folder"
    ]
