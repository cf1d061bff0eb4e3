"""Plumbing for the federated-learning course: one small module per concern.

- runtime:  Python check, quiet logs, QUICK mode, seeding, clean-up of TFF's worker process
- data:     the shipped federated digits as TFF ClientData (checksum-verified)
- model:    the CNN taught in notebook 01
- plotting: figures the notebooks share
- progress: one progress bar for long loops
- workers:  run TFF on executor workers (worker_binary) instead of the local runtime
- experiments: client populations held in memory, and the training loop of notebooks 06-08
- privacy:  secure aggregation's arithmetic, privacy accounting, attack measures (notebook 07)
- robustness: attacks, robust aggregators and the fast round loop of notebook 08

The code each notebook teaches (model, client update, aggregation, process) lives in the
notebooks themselves; code later notebooks reuse is saved here from the notebook that taught it.
"""
from helpers import runtime  # noqa: F401  (quiets TensorFlow before anything imports it)

runtime.check_python()
# Before TensorFlow loads (the other modules import it, and that alone takes 0.4 GB): free what
# killed kernels left behind, then make sure this notebook fits in the session's memory limit.
runtime.stop_orphaned_workers()
runtime.ensure_memory_fits()
