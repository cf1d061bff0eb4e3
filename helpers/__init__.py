"""Plumbing for the federated-learning course: one small module per concern.

- runtime:     Python check, quiet logs, QUICK mode, seeding, memory guard, checks that explain
- data:        the shipped federated digits as TFF ClientData (checksum-verified), the pipeline
- model:       the CNN of notebook 01
- fedavg:      FedAvg's pieces as notebooks 03-05 teach them (client update, server update, process)
- populations: clients held in memory: the writers, or their images re-dealt IID or skewed
- training:    the one round loop, its TFF process step, and evaluation on held-out images
- simulation:  FedAvg's round step on a compiled trainer, with hooks (drop-outs, staleness, ...)
- robustness:  robust aggregators and attackers (notebook 08)
- privacy:     secure aggregation's arithmetic, privacy accounting, attack measures (notebook 07)
- workers:     TFF's executor workers (worker_binary): start, connect, stop, clean up
- plotting:    figures the notebooks share
- progress:    one progress bar for long loops
- playground:  the interactive FedAvg panel of notebook 06

Code a notebook teaches and later notebooks reuse is saved here verbatim; the notebook's cell
says where (tests/test_notebooks.py keeps both copies identical).
"""
from helpers import runtime  # noqa: I001  (first: it quiets TensorFlow before anything imports it)
from helpers import workers

runtime.check_python()
# Before TensorFlow loads (the other modules import it, and that alone takes 0.4 GB): free what
# killed kernels left behind, then make sure this notebook fits in the session's memory limit.
workers.stop_orphaned_workers()
runtime.ensure_memory_fits()
