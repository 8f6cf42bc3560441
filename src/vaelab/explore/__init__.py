"""`vaelab explore`: a local web app that looks inside trained runs, side by side.

- `runs.py` finds run directories (a run, or a study's AE and tuned VAE);
- `latent.py` the 2-D latent map (PCA of test codes μ) and the most informative latent dims;
- `drawing.py` normalises a drawn digit the way MNIST's digits were;
- `session.py` loads models, test images and the reference classifier, and answers every action;
- `api.py` checks untrusted requests and maps routes to actions; `server.py` is the HTTP server;
- `static/` the page itself (plain HTML/JS/CSS, no external resources).

Importing this package is cheap (the CLI builds its parser from it); its modules load PyTorch.
"""

DEFAULT_PORT = 8765
