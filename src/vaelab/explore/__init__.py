"""`vaelab explore`: a local web app that looks inside trained runs, side by side.

`runs` finds the run directories, `session` loads models, fits the latent maps and answers every
action, `api` checks untrusted requests, `server` serves them and `static/` the page.
"""
