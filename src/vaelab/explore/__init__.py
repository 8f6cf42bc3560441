"""`vaelab explore`: a local web app that looks inside trained runs, side by side.

`runs` finds the run directories, `latent` fits the 2-D latent map, `session` loads models and
answers every action, `api` checks untrusted requests, `server` serves them and `static/` the page.
"""
