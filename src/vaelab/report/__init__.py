"""Reports and figures: pure functions of stored results (study.json, eval files, sweep storage)."""
