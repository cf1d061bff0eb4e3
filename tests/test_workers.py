"""The course's FedAvg on TFF executor workers over loopback (helpers.workers)."""
import time

import numpy as np
import psutil
import pytest
import tensorflow_federated as tff

from helpers import runtime, workers
from helpers.fedavg import build_fedavg_process
from helpers.model import create_model


def two_rounds(process, round_datasets, state):
    """Two rounds of 4 writers each from `state`; returns (state, metrics of the last round)."""
    for round_num in range(2):
        state, metrics = process.next(state, round_datasets(round_num, clients=4), 0.1)
    return state, metrics


@pytest.fixture(scope="module")
def process(round_datasets):
    # Seeded: summing over two workers changes the last bit of the mean, and from a few initial
    # models SGD amplifies that chaotically (see tests/test_fedavg.py); this is the course's model.
    runtime.set_seed()
    element_spec = round_datasets(0)[0].element_spec
    return build_fedavg_process(create_model, element_spec, tff.learning.optimizers.build_sgdm(1.0, momentum=0.9))


@pytest.mark.parametrize("count", [1, 2])
def test_rounds_on_workers_match_the_local_runtime(process, round_datasets, count, tmp_path):
    workers.use_local_runtime()
    initial = process.initialize()
    local_state, local_metrics = two_rounds(process, round_datasets, initial)
    with workers.local_workers(count, log_dir=str(tmp_path)) as addresses:
        ports = {f"--port={a.rsplit(':', 1)[1]}" for a in addresses}
        pids = [pid for pid in workers.worker_pids() if ports & set(psutil.Process(pid).cmdline())]
        assert len(pids) == count
        try:
            workers.use_workers(addresses)
            state, metrics = two_rounds(process, round_datasets, initial)  # same initial weights as the local run
        finally:
            workers.use_local_runtime()
    for a, b in zip(state["weights"], local_state["weights"]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(metrics["loss"], local_metrics["loss"], rtol=1e-4)
    np.testing.assert_allclose(metrics["accuracy"], local_metrics["accuracy"], atol=1e-5)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


def test_two_workers_each_get_their_share_of_the_clients():
    # TFF 0.87.0 alone gives both subrounds the first half of the clients when the argument's last
    # element is not CLIENTS-placed, as in the course's next(state, client_datasets, learning_rate).
    arg_type = tff.StructType([tff.FederatedType(np.float32, tff.SERVER), tff.FederatedType(np.int32, tff.CLIENTS),
                               tff.FederatedType(np.float32, tff.SERVER)])
    value = [1.0, [10, 11, 12, 13, 14], 0.1]
    with workers.fixed_client_partitioning():
        subrounds = workers.split_round(value, arg_type, 2)
    assert [list(s[1]) for s in subrounds] == [[10, 11, 12], [13, 14]]
    assert all(s[0] == 1.0 and s[2] == 0.1 for s in subrounds)
    assert not workers.client_partitioning_fixed(), "the fix is only in place inside the block"
    stock = workers.split_round(value, arg_type, 2)
    assert [list(s[1]) for s in stock] == [[10, 11, 12], [10, 11, 12]], "TFF fixed it: the patch can go"


def test_use_local_runtime_undoes_the_partitioning_fix():
    with workers.local_workers(2) as addresses:
        try:
            workers.use_workers(addresses)
            assert workers.client_partitioning_fixed()
        finally:
            workers.use_local_runtime()
    assert not workers.client_partitioning_fixed()


def test_record_traffic_measures_every_call_on_the_wire():
    """Each call sends its computation again (TFF caches none), its argument as the serialized
    value, and receives the result; nothing is recorded outside the block."""
    @tff.tensorflow.computation(tff.TensorType(np.float32, [1000]))
    def double(x):
        return x * 2.0

    argument = np.arange(1000, dtype=np.float32)
    value_bytes = len(workers.serialized_bytes(argument, tff.TensorType(np.float32, [1000])))
    with workers.local_workers(1) as addresses:
        try:
            workers.use_workers(addresses)
            with workers.record_traffic() as records:
                first, second = double(argument), double(argument)
            np.testing.assert_array_equal(first, second)
            double(argument)  # after the block: not recorded
        finally:
            workers.use_local_runtime()
    np.testing.assert_array_equal(second, 2 * argument)
    assert {r["address"] for r in records} == set(addresses)
    computations = [r["sent"] for r in records if r["kind"] == "computation"]
    computes = [r for r in records if r["method"] == "compute"]
    assert len(computations) == len(computes) == 2 and computations[0] == computations[1] > 0
    arguments = [r["sent"] for r in records if r["kind"] == "array"]
    assert len(arguments) == 2 and all(value_bytes <= b < value_bytes + 100 for b in arguments)
    assert all(4000 <= r["received"] < 4100 for r in computes), "the result: 1000 float32"


def test_other_tff_versions_are_refused_clearly(monkeypatch):
    monkeypatch.setattr(tff, "__version__", "0.99.0")
    with pytest.raises(workers.UnsupportedTFFVersionError, match="0.99.0.*make setup"):
        workers.split_round([1.0], tff.StructType([np.float32]), 2)


def test_local_workers_close_their_log_files(tmp_path):
    import gc

    with workers.local_workers(1, log_dir=str(tmp_path)):
        pass
    gc.collect()
    logs = list(tmp_path.glob("worker-*.log"))
    assert len(logs) == 1
    open_files = [f.path for f in psutil.Process().open_files()]
    assert str(logs[0]) not in open_files


def test_dead_address_fails_fast_and_names_it():
    start = time.monotonic()
    with pytest.raises(workers.WorkerUnreachableError, match="127.0.0.1:9") as err:
        workers.use_workers(["127.0.0.1:9"], timeout=3)
    assert time.monotonic() - start < 10
    assert "COURSE_WORKERS" in str(err.value)


@pytest.mark.parametrize("count", [1, 2])
def test_a_worker_lost_mid_run_raises_instead_of_hanging(process, round_datasets, count):
    """TFF retries calls to a worker that is gone without limit; the course's contexts name it instead."""
    workers.use_local_runtime()
    state = process.initialize()
    with workers.local_workers(count) as addresses:
        try:
            workers.use_workers(addresses, timeout=2)
            state, _ = process.next(state, round_datasets(0, clients=4), 0.1)
            workers.stop_worker(addresses[-1])
            with pytest.raises(workers.WorkerUnreachableError, match=addresses[-1]):
                process.next(state, round_datasets(1, clients=4), 0.1)
        finally:
            workers.use_local_runtime()
    with pytest.raises(ValueError, match="No worker started by local_workers"):
        workers.stop_worker(addresses[0])  # already stopped with the others


def test_env_var_unset_means_local(monkeypatch):
    monkeypatch.delenv("COURSE_WORKERS", raising=False)
    assert workers.use_workers_from_env() is None
