"""Tuning on Optuna: storage, one job loop for trials, the sweep and the study's β search."""
