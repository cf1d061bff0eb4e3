"""TFF's worker processes (`worker_binary`): the one TFF starts for its local runtime, which
outlives Python unless stopped by pid (done here at exit, and for kernels that died, at the next
import of `helpers`), and executor workers on this machine or others (notebook 09 teaches them).

    with workers.local_workers(2) as addresses:   # started here, always stopped by pid
        workers.use_workers(addresses)            # TFF's default context now runs on them
        ...
        workers.use_local_runtime()

`COURSE_WORKERS=host:port[,host:port...]` makes `use_workers_from_env()` (called by notebook 05
and the benchmark) point TFF at workers that are already running. The worker speaks plain gRPC
without TLS: between machines, use a private network or a tunnel.
"""
import atexit
import contextlib
import os
import signal
import subprocess
from pathlib import Path

# --- TFF's worker_binary ---------------------------------------------------------------
# TFF runs computations in a separate C++ process (`worker_binary`) that it starts lazily as a
# child of this Python process and never stops: it outlives the interpreter (and holds any pipe
# the interpreter's stdout was). We stop the ones *this* process started, by pid, at exit.


def _is_worker(proc):
    import psutil

    try:
        cmd = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return bool(cmd) and os.path.basename(cmd[0]) == "worker_binary"


def worker_pids(parent_pid=None, recursive=False):
    """Pids of TFF `worker_binary` processes started by `parent_pid` (default: this process)."""
    import psutil

    try:
        parent = psutil.Process(parent_pid or os.getpid())
        children = parent.children(recursive=recursive)
    except psutil.NoSuchProcess:
        return []
    return sorted(p.pid for p in children if _is_worker(p))


def stop_processes(pids, timeout=5.0):
    """Stop processes by pid: SIGINT (TFF's own way), then SIGKILL after `timeout` s."""
    import psutil

    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGINT)
            procs.append(proc)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)
    return [p.pid for p in procs]


def stop_own_workers():
    """Stop the `worker_binary` processes this Python process started; returns their pids."""
    return stop_processes(worker_pids())


atexit.register(stop_own_workers)

# A kernel killed outright (the out-of-memory killer, SIGKILL) never runs `atexit`, and its worker
# lives on. Every process this one starts inherits OWNER_VARIABLE, so a course worker names the
# kernel that started it; a worker started by hand (README: workers on other machines) does not.
OWNER_VARIABLE = "COURSE_OWNER_PID"
os.environ[OWNER_VARIABLE] = str(os.getpid())


def orphaned_workers():
    """Pids of course `worker_binary` processes whose owner (the kernel or script that started
    them) is gone: its pid no longer exists, or now belongs to a process started after the worker."""
    import psutil

    orphans = []
    for proc in psutil.process_iter():
        if not _is_worker(proc):
            continue
        try:
            owner = int(proc.environ().get(OWNER_VARIABLE, 0))
            born = proc.create_time()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ValueError):
            continue
        if not owner or owner == os.getpid():
            continue
        try:
            parent = psutil.Process(owner)
            if parent.create_time() <= born and parent.status() != psutil.STATUS_ZOMBIE:
                continue  # its owner is alive (a zombie is dead, only not yet collected)
        except psutil.NoSuchProcess:
            pass
        orphans.append(proc.pid)
    return sorted(orphans)


def stop_orphaned_workers():
    """Stop, by pid, the course workers left by kernels that died; say what it freed."""
    import psutil

    pids, freed = orphaned_workers(), 0
    for pid in pids:
        try:
            freed += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            pass
    stop_processes(pids, timeout=0.5)  # orphans owe nobody a clean exit
    if pids:
        print(f"Stopped {len(pids)} TFF worker(s) left running by a course kernel that died "
              f"(pids {pids}), freeing {freed / 2**20:,.0f} MB.")
    return pids


ENV_VAR = "COURSE_WORKERS"
_GRPC_OPTIONS = [  # as TFF's local runtime: models and datasets travel in single messages
    ("grpc.max_message_length", 2 * 1000 * 1000 * 1000),
    ("grpc.max_receive_message_length", 2 * 1000 * 1000 * 1000),
    ("grpc.max_send_message_length", 2 * 1000 * 1000 * 1000),
]


#: The TFF release whose private modules this file reaches into (the client-splitting fix, and
#: notebook 09 looks at how a round is split and serialised).
TESTED_TFF_VERSION = "0.87.0"


class WorkerUnreachableError(RuntimeError):
    """A worker address that does not answer."""


class UnsupportedTFFVersionError(RuntimeError):
    """TFF's private modules used here are only known for TESTED_TFF_VERSION."""


def _tff_internals():
    """TFF's private modules used here, after checking that TFF is the version they were read from."""
    import tensorflow_federated as tff

    if tff.__version__ != TESTED_TFF_VERSION:
        raise UnsupportedTFFVersionError(
            f"helpers.workers patches and inspects private parts of TFF {TESTED_TFF_VERSION} "
            f"(mergeable_comp_execution_context, value_serialization); this is TFF {tff.__version__}. "
            f"Install the course's pinned TFF with `make setup`, or check whether TFF {tff.__version__} "
            f"still splits clients by the last argument (tests/test_workers.py does) and update this module."
        )
    from tensorflow_federated.python.common_libs import structure
    from tensorflow_federated.python.core.impl.execution_contexts import mergeable_comp_execution_context
    from tensorflow_federated.python.core.impl.executors import value_serialization
    from tensorflow_federated.python.core.impl.types import computation_types

    return structure, mergeable_comp_execution_context, value_serialization, computation_types


def split_round(arguments, round_type, num_workers):
    """How TFF's mergeable context cuts one round's `arguments` into one share per worker.

    It looks only at types and the number of clients, so client ids can stand in for datasets.
    Returns the list of per-worker argument lists.
    """
    _, mcec, _, _ = _tff_internals()
    return mcec._split_value_into_subrounds(arguments, round_type, num_desired_subrounds=num_workers)


@contextlib.contextmanager
def fixed_client_partitioning():
    """Within this block, TFF splits clients with the course's fix (what `use_workers` installs for
    several workers); afterwards, as before."""
    was_fixed = client_partitioning_fixed()
    _fix_client_partitioning()
    try:
        yield
    finally:
        if not was_fixed:
            _undo_client_partitioning_fix()


def client_partitioning_fixed():
    """Whether the course's fix of TFF's client splitting is installed."""
    _, mcec, _, _ = _tff_internals()
    return hasattr(mcec._partition_value, "course_original")


def serialized_bytes(value, type_spec):
    """Bytes of `value` (of TFF type `type_spec`) as TFF's remote executor puts it on the wire."""
    _, _, value_serialization, _ = _tff_internals()
    proto, _ = value_serialization.serialize_value(value, type_spec)
    return proto.SerializeToString()


def worker_binary():
    """Path of the `worker_binary` shipped inside the TFF wheel."""
    import tensorflow_federated as tff

    return Path(tff.__file__).resolve().parent / "data" / "worker_binary"


def connect(address, timeout=10.0):
    """A gRPC channel to the worker at `address` ("host:port"), once it answers; else a clear error."""
    import grpc

    channel = grpc.insecure_channel(address, _GRPC_OPTIONS)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        channel.close()
        raise WorkerUnreachableError(
            f"No TFF worker answers at {address} (waited {timeout:g} s). Start one there with "
            f"`{worker_binary()} --port=PORT` and make sure the port is reachable from this machine, "
            f"or unset {ENV_VAR} to train on the local runtime."
        ) from None
    return channel


def _fail_fast_stub(channel, address, timeout):
    """TFF's gRPC stub, except that a worker gone for `timeout` s raises WorkerUnreachableError.

    TFF retries a call that failed with UNAVAILABLE without limit (it expects workers to come back), so
    a worker that crashed would hang the kernel in the middle of a round. Here a failed call probes the
    worker: if it answers within `timeout` s, TFF retries as usual; if not, a clear error names it.
    """
    import tensorflow_federated as tff

    def fail_fast(method):
        def call(self, request):
            try:
                response = method(self, request)
                _record(address, method.__name__, request, response)
                return response
            except tff.framework.RetryableError:
                try:
                    connect(address, timeout).close()
                except WorkerUnreachableError:
                    raise WorkerUnreachableError(
                        f"The TFF worker at {address} stopped answering in the middle of a computation (no answer "
                        f"for {timeout:g} s): it was stopped or crashed, or the network dropped. Start it again, "
                        f"or run on the workers that answer (`workers.use_workers([...])`) or on the local runtime "
                        f"(`workers.use_local_runtime()`)."
                    ) from None
                raise  # the worker answers again: let TFF retry
        return call

    def recorded(method):  # clean-up calls: a failure there is TFF's to handle
        def call(self, request):
            response = method(self, request)
            _record(address, method.__name__, request, response)
            return response
        return call

    methods = ("get_executor", "create_value", "create_struct", "create_call", "create_selection", "compute")
    wrapped = {name: fail_fast(getattr(tff.framework.RemoteExecutorGrpcStub, name)) for name in methods}
    for name in ("dispose", "dispose_executor"):
        wrapped[name] = recorded(getattr(tff.framework.RemoteExecutorGrpcStub, name))
    stub_class = type("FailFastStub", (tff.framework.RemoteExecutorGrpcStub,), wrapped)
    return stub_class(channel)


_RECORDINGS = []  # the open `record_traffic` blocks' lists (normally none)


def _record(address, method, request, response):
    """Append one gRPC call to every open `record_traffic` list."""
    if not _RECORDINGS:
        return
    kind = method
    if method == "create_value":  # what the value is: a computation, a placed value, ...
        kind = request.value.WhichOneof("value")
        if kind == "federated":
            kind = "at " + request.value.federated.type.placement.value.uri
    for calls in _RECORDINGS:
        calls.append(dict(address=address, method=method, kind=kind,
                          sent=request.ByteSize(), received=response.ByteSize()))


@contextlib.contextmanager
def record_traffic():
    """Within this block, every gRPC call TFF makes to the workers of `use_workers` is appended to the
    list it yields: dict(address, method, kind, sent, received), `sent` and `received` being the sizes
    in bytes of the serialized request and reply (gRPC adds a few bytes of framing to each). `kind`
    says what a `create_value` sends: "computation", "at server", "at clients", "array", "struct"."""
    calls = []
    _RECORDINGS.append(calls)
    try:
        yield calls
    finally:
        _RECORDINGS.remove(calls)


def _executor_factory(channel, address, timeout):
    import tensorflow_federated as tff

    stub = _fail_fast_stub(channel, address, timeout)

    def stack_fn(cardinalities):
        # The worker needs a CLIENTS cardinality even for computations without client values
        # ("No cardinality provided"); TFF's own local factory defaults it to 0 the same way.
        if cardinalities.get(tff.CLIENTS) is None:
            cardinalities[tff.CLIENTS] = 0
        executor = tff.framework.RemoteExecutor(stub)
        executor.set_cardinalities(cardinalities)
        return executor

    return tff.framework.ResourceManagingExecutorFactory(executor_stack_fn=stack_fn)


def _fix_client_partitioning():
    """Correct how TFF 0.87.0's mergeable-comp context splits a round's clients across workers.

    TFF walks the computation's argument (a struct, e.g. (state, client_datasets, learning_rate))
    and takes the "which clients are left" counters from the struct's *last* element. When that
    element is not CLIENTS-placed, the counters never advance, so every worker receives the first
    worker's share of clients and the rest are never trained: with 4 writers over 2 workers, the
    round trained writers 0 and 1 twice (notebook 09 shows it). Here the counters come from the
    element that actually consumed clients. Leaves are still split by TFF's own code.
    """
    structure, mcec, _, computation_types = _tff_internals()
    original = getattr(mcec._partition_value, "course_original", mcec._partition_value)

    def partition_value(val, type_signature):
        if not isinstance(type_signature, computation_types.StructType):
            return original(val, type_signature)
        results = []
        for (_, element), (name, element_type) in zip(structure.iter_elements(structure.from_container(val.payload)),
                                                      structure.iter_elements(type_signature)):
            start = mcec._PartitioningValue(element, val.num_remaining_clients, val.num_remaining_partitions,
                                            val.last_client_index)
            results.append((name, partition_value(start, element_type)))
        if not results:
            raise ValueError(f"Expected the value to not be empty, found {val}.")
        consumed = [r for _, r in results if r.num_remaining_partitions != val.num_remaining_partitions]
        counters = consumed[0] if consumed else val
        return mcec._PartitioningValue(structure.Struct([(name, r.payload) for name, r in results]),
                                       counters.num_remaining_clients, counters.num_remaining_partitions,
                                       counters.last_client_index)

    partition_value.course_original = original
    mcec._partition_value = partition_value


def _undo_client_partitioning_fix():
    """Give TFF its own client splitting back (the local runtime does not split clients)."""
    import sys

    mcec = sys.modules.get("tensorflow_federated.python.core.impl.execution_contexts.mergeable_comp_execution_context")
    if mcec is not None and hasattr(mcec._partition_value, "course_original"):
        mcec._partition_value = mcec._partition_value.course_original


def use_workers(addresses, timeout=10.0):
    """Make TFF run computations on the workers at `addresses` (one, or several sharing the clients)."""
    import tensorflow_federated as tff

    if isinstance(addresses, str):
        addresses = [addresses]
    if not addresses:
        raise ValueError("use_workers needs at least one 'host:port' address.")
    channels = [connect(address, timeout) for address in addresses]
    factories = [_executor_factory(c, address, timeout) for c, address in zip(channels, addresses)]
    options = dict(compiler_fn=tff.backends.native.desugar_and_transform_to_native,
                   transform_args=tff.tensorflow.transform_args, transform_result=tff.tensorflow.transform_result)
    if len(channels) == 1:
        context = tff.framework.SyncExecutionContext(factories[0], **options)
    else:  # TFF splits each round's clients across the workers and merges their results
        _fix_client_partitioning()
        context = tff.backends.native.create_mergeable_comp_execution_context(
            [tff.framework.AsyncExecutionContext(factory, **options) for factory in factories])
    _stop_tff_local_workers()  # TFF would wait, unbounded, for its old local worker (see below)
    tff.framework.set_default_context(context)
    return list(addresses)


def use_local_runtime():
    """Back to TFF's default: a local worker_binary started on demand; TFF's client splitting as shipped."""
    import tensorflow_federated as tff

    _undo_client_partitioning_fix()
    _stop_tff_local_workers()
    tff.backends.native.set_sync_local_cpp_execution_context()


_OWN_WORKERS = {}  # pid -> address of the workers `local_workers` started (and stops itself)


def _stop_tff_local_workers():
    """Kill the worker_binary TFF started for its local runtime, before TFF replaces that runtime.

    Replacing it makes TFF send the old worker SIGINT and wait for it with no time limit; a worker that
    has served calls ignores SIGINT for a while, and the kernel would hang there. Killed first, the
    worker is already gone, and TFF's wait returns at once (it also collects the exit status).
    """
    for pid in worker_pids():
        if pid not in _OWN_WORKERS:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def restart_local_runtime():
    """A fresh local runtime, its previous worker_binary stopped by pid.

    TFF's local worker grows with every learning process it runs (notebook 07's sweep of six DP
    processes took one to 1.5 GB) and keeps that memory while it lives; a new one starts small.
    Executor workers started by `local_workers` keep running.
    """
    import gc

    previous = [pid for pid in worker_pids() if pid not in _OWN_WORKERS]
    use_local_runtime()
    gc.collect()  # TFF's handle on the old worker asks it to stop when collected
    stop_processes(previous, timeout=0.2)  # a worker that has served calls ignores SIGINT for a while


def stop_worker(address):
    """Stop the worker that `local_workers` started at `address`, by pid, as if it had crashed."""
    pids = [pid for pid, own in _OWN_WORKERS.items() if own == address]
    if not pids:
        raise ValueError(f"No worker started by local_workers listens at {address}; "
                         f"the running ones are {sorted(_OWN_WORKERS.values())}.")
    stop_processes(pids, timeout=0.2)  # a crash does not wait


def use_workers_from_env(timeout=10.0):
    """If COURSE_WORKERS is set, run on those workers and return their addresses; else None."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    return use_workers([a.strip() for a in value.split(",") if a.strip()], timeout)


@contextlib.contextmanager
def local_workers(count, startup_timeout=30.0, log_dir=None):
    """Start `count` workers on loopback; yield their addresses; always stop them (by pid)."""
    import portpicker

    procs, logs = [], contextlib.ExitStack()
    with logs:
        try:
            addresses = []
            for _ in range(count):
                port = portpicker.pick_unused_port()
                log = (logs.enter_context(open(os.path.join(log_dir, f"worker-{port}.log"), "w")) if log_dir
                       else subprocess.DEVNULL)
                command = [str(worker_binary()), f"--port={port}", "--max_concurrent_computation_calls=-1"]
                procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
                addresses.append(f"127.0.0.1:{port}")
                _OWN_WORKERS[procs[-1].pid] = addresses[-1]
            for address in addresses:
                connect(address, startup_timeout).close()
            yield addresses
        finally:
            stop_processes([p.pid for p in procs])
            for p in procs:
                p.wait(timeout=10)
                _OWN_WORKERS.pop(p.pid, None)
