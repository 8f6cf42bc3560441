"""`vaelab explore`: a local web app that looks inside trained runs, side by side.

`session` finds the runs, loads their models and answers every action, `server` checks untrusted
requests and serves them, `static/` holds the page.
"""
