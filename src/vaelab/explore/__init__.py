"""`vaelab explore`: a local web app that looks inside trained runs, side by side.

- `runs.py` finds run directories (a run, or a study's AE and tuned VAE);
- `latent.py` the 2-D latent map (PCA of test codes μ) and the most informative latent dims;
- `session.py` loads models, test images and the reference classifier, and answers every action;
- `validate.py` turns untrusted request bodies into checked tensors, or a 4xx `ApiError`;
- `api.py` maps routes to actions; `server.py` is the standard-library HTTP server;
- `static/` the page itself (plain HTML/JS/CSS, no external resources).
"""

from vaelab.explore.runs import find_runs
from vaelab.explore.server import make_server, serve
from vaelab.explore.session import Explorer, load_explorer

__all__ = ["Explorer", "find_runs", "load_explorer", "make_server", "serve"]
