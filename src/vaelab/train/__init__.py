"""Training: the loop, the run folder (config, checkpoints, logs, DONE), preflight checks, DDP."""

from vaelab import callable_package

callable_package(__name__)
