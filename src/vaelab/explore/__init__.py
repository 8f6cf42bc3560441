"""`vaelab explore`: a local web app that looks inside trained runs, side by side.

- `runs.py` finds run directories (a run, or a study's AE and tuned VAE);
- `latent.py` the 2-D latent map (PCA of test codes μ) and the most informative latent dims;
- `drawing.py` normalises a drawn digit the way MNIST's digits were;
- `session.py` loads models, test images and the reference classifier, and answers every action;
- `validate.py` turns untrusted request bodies into checked tensors, or a 4xx `ApiError`;
- `api.py` maps routes to actions; `server.py` is the standard-library HTTP server;
- `browser.py` drives the page in headless Chromium (tests, benchmark, screenshots);
- `static/` the page itself (plain HTML/JS/CSS, no external resources).

Importing this package is cheap (the CLI builds its parser from it); the public names below load
their modules, and with them PyTorch, on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

DEFAULT_PORT = 8765

_PUBLIC = {
    "Explorer": "vaelab.explore.session",
    "load_explorer": "vaelab.explore.session",
    "find_runs": "vaelab.explore.runs",
    "make_server": "vaelab.explore.server",
    "serve": "vaelab.explore.server",
    "start_background": "vaelab.explore.server",
}
__all__ = ["DEFAULT_PORT", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'vaelab.explore' has no attribute {name!r}")
