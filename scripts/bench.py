"""The course's benchmark: notebook run times and memory, and federated vs centralised throughput.

    make bench            # full mode; `make bench ARGS=--quick` for quick mode, `--skip-notebooks`
                          # or `--skip-throughput` to run one half, `--only 05_` for one notebook,
                          # `--cpus 1` pinned to one core (scripts/course_times.py reads all three),
                          # `--dataset-options` to measure the client dataset options too (as 09 does)

Writes build/bench.json (build/bench-quick.json with --quick, build/bench-1cpu.json with --cpus 1)
and build/round_cost.png, and prints a table; the executed notebooks, with
their outputs, go to build/executed/{full,quick}/. Never fails the build:
a failing notebook is recorded with ok=false. Compare figures within one run; absolute times on
shared 2-core machines are noisy, so every throughput figure is a median of repeats.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import nbwriter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import runtime  # noqa: E402  (quiets TF, stops this process's workers at exit)

BUILD = ROOT / "build"
BINDER_MEMORY_MB = 2048  # mybinder.org gives a session at most 2 GB of memory


# --- 1. notebooks ---------------------------------------------------------------------------


def _tree_rss(pid):
    """Resident memory of a process and all its descendants (the kernel and its worker_binary)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_notebook(path, quick):
    """Execute one notebook on a fresh kernel; return seconds, peak RSS (MB) of kernel + workers, ok."""
    import nbformat
    from nbclient import NotebookClient

    os.environ["COURSE_QUICK"] = "1" if quick else "0"  # the kernel inherits it
    os.environ.setdefault("COURSE_STRICT", "1")  # a claim that fails stops the benchmark
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    peak, done = [0], threading.Event()

    def sample():
        while not done.is_set():
            km = client.km
            if km is not None and km.has_kernel and km.provisioner and getattr(km.provisioner, "process", None):
                peak[0] = max(peak[0], _tree_rss(km.provisioner.process.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start, ok, error = time.perf_counter(), True, ""
    try:
        client.execute()
    except Exception as err:  # a failing notebook is a result, not a crash of the benchmark
        lines = [line for line in str(err).splitlines() if line.strip()]
        ok, error = False, f"{type(err).__name__}: {lines[-1] if lines else ''}"[:300]
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    executed = BUILD / "executed" / ("quick" if quick else "full")
    executed.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, executed / path.name)  # with its outputs, to read the figures behind a run
    return {"name": path.name, "mode": "quick" if quick else "full", "seconds": round(seconds, 1),
            "peak_rss_mb": round(peak[0] / 2**20), "ok": ok, **({"error": error} if error else {})}


# --- 2. throughput ----------------------------------------------------------------------------


def _median_min_max(values):
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1), "max": round(max(values), 1)}


def measure_throughput(repeats, clients_per_round=5, local_epochs=3, batch_size=20, round_costs=(5, 10, 20, 50)):
    """Examples/s of notebook 05's FedAvg set-up, Keras `fit` and a compiled loop, on the same data."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_federated as tff

    from helpers import data, fedavg, workers
    from helpers.model import create_model

    runtime.set_seed()
    workers.use_workers_from_env()  # COURSE_WORKERS: measure on executor workers instead
    train = data.load_federated_digits().train
    one_example = train.preprocess(lambda dataset: dataset.take(1))  # rounds that cost only overhead
    ids = list(train.client_ids)
    sizes = {cid: sum(1 for _ in train.create_tf_dataset_for_client(cid)) for cid in ids}
    element_spec = data.preprocess(train.create_tf_dataset_for_client(ids[0])).element_spec
    process = fedavg.build_fedavg_process(create_model, element_spec,
                                          tff.learning.optimizers.build_sgdm(learning_rate=1.0, momentum=0.9))
    for client_data in (train, one_example):  # every writer's base dataset built before the clock runs
        fedavg.client_datasets(client_data, ids, 0, 1, batch_size)

    build_seconds = []  # Python-side: building one round's client datasets, per client

    def fedavg_rounds(cpr, n_rounds, state, tiny=False, first_round=0):
        """Run rounds; return (state, [(seconds, examples)]), dataset building included, as notebook 05 does
        (with its saved `client_datasets`). `tiny`: every client holds one example; what is left is overhead.
        """
        out = []
        for r in range(first_round, first_round + n_rounds):
            chosen = fedavg.sample_clients(ids, cpr, r, seed=7_000 + cpr)  # a draw per (clients per round, round)
            start = time.perf_counter()
            datasets = fedavg.client_datasets(one_example if tiny else train, chosen, r,
                                              1 if tiny else local_epochs, batch_size)
            build_seconds.append((time.perf_counter() - start) / cpr)
            state, _ = process.next(state, datasets, 0.05)
            examples = cpr if tiny else local_epochs * sum(sizes[c] for c in chosen)
            out.append((time.perf_counter() - start, examples))
        return state, out

    # Centralised references: the pooled training writers, same model and batch size.
    x, y = data.pooled("train")
    inputs = data.to_model_input(x)
    fit_model = create_model()
    fit_model.compile(optimizer=tf.keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    dataset = (tf.data.Dataset.from_tensor_slices((inputs, y)).shuffle(len(y), seed=0)
               .batch(batch_size).prefetch(tf.data.AUTOTUNE))
    loop_model = create_model()
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def train_epoch(ds):
        for xb, yb in ds:
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, loop_model(xb, training=True))
            for v, g in zip(loop_model.trainable_variables, tape.gradient(loss, loop_model.trainable_variables)):
                v.assign_sub(0.05 * g)

    def timed(fn):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def fit_epoch():
        fit_model.fit(inputs, y, batch_size=batch_size, epochs=1, verbose=0)

    # First round / epoch (tracing, warm-up) apart; then the three take turns, repetition by
    # repetition, so that each repetition's ratios compare runs made within the same minute: these
    # shared VMs have slow phases (both centralised references fell to ~2,040 examples/s in some).
    state = process.initialize()
    state, first = fedavg_rounds(clients_per_round, 1, state)
    first_fit, first_loop = timed(fit_epoch), timed(lambda: train_epoch(dataset))
    steady, fed_rates, fit_rates, loop_rates = [], [], [], []
    for i in range(max(repeats, 5)):
        # A repetition = 4 consecutive rounds, so that each covers a variety of writers.
        state, rounds = fedavg_rounds(clients_per_round, 4, state, first_round=1 + 4 * i)
        steady += rounds
        fed_rates.append(sum(n for _, n in rounds) / sum(s for s, _ in rounds))
        fit_rates.append(len(y) / timed(fit_epoch))
        loop_rates.append(len(y) / timed(lambda: train_epoch(dataset)))
    ratios = [f / c for f, c in zip(fed_rates, fit_rates)]
    ratios_to_compiled = [f / c for f, c in zip(fed_rates, loop_rates)]

    # Round cost against clients per round (same local epochs; median of 3 rounds after one warm-up).
    cost = []
    for cpr in round_costs:
        _, rounds = fedavg_rounds(cpr, 4, state)
        cost.append({"clients_per_round": cpr, "median_round_s": round(statistics.median(s for s, _ in rounds[1:]), 3),
                     "examples_per_s": round(statistics.median(n / s for s, n in rounds[1:]))})

    # Where a round's time goes: rounds whose clients hold one example each cost only overhead.
    # A line through (clients, seconds) splits it into a fixed part per round and a part per client.
    tiny = []
    for cpr in (1, 5, 10):
        _, rounds = fedavg_rounds(cpr, 5, state, tiny=True)
        tiny.append((cpr, statistics.median(s for s, _ in rounds[1:])))
    per_client_s, per_round_s = np.polyfit([c for c, _ in tiny], [s for _, s in tiny], 1)
    steady_seconds = sum(s for s, _ in steady)
    overhead_seconds = len(steady) * (per_round_s + clients_per_round * per_client_s)
    overhead = {
        "per_round_s": round(float(per_round_s), 3), "per_client_s": round(float(per_client_s), 3),
        "python_dataset_build_s_per_client": round(statistics.median(build_seconds), 3),
        "share_of_steady_round": round(overhead_seconds / steady_seconds, 2),
        "training_examples_per_s_without_overhead":
            round(sum(n for _, n in steady) / (steady_seconds - overhead_seconds)),
        "one_example_rounds_s": {str(c): round(s, 3) for c, s in tiny},
    }

    fed, fit, loop = (statistics.median(r) for r in (fed_rates, fit_rates, loop_rates))
    return {
        "federated_examples_per_s": round(fed), "centralized_examples_per_s": round(fit),
        "compiled_loop_examples_per_s": round(loop),
        # medians of the per-repetition ratios (each from runs made back to back)
        "ratio": round(statistics.median(ratios), 2),
        "ratio_to_compiled": round(statistics.median(ratios_to_compiled), 2),
        "first_round_s": round(first[0][0], 2), "first_fit_epoch_s": round(first_fit, 2),
        "first_loop_epoch_s": round(first_loop, 2),
        "spread": {"federated": _median_min_max(fed_rates), "centralized": _median_min_max(fit_rates),
                   "compiled_loop": _median_min_max(loop_rates),
                   "ratio": {"median": round(statistics.median(ratios), 2), "min": round(min(ratios), 2),
                             "max": round(max(ratios), 2)},
                   "ratio_to_compiled": {"median": round(statistics.median(ratios_to_compiled), 2),
                                         "min": round(min(ratios_to_compiled), 2),
                                         "max": round(max(ratios_to_compiled), 2)}},
        "repeats": repeats, "clients_per_round": clients_per_round, "local_epochs": local_epochs,
        "batch_size": batch_size, "round_cost": cost, "overhead": overhead,
    }


def measure_dataset_options(repeats, clients_per_round=5, local_epochs=3, batch_size=20, tiny_clients=(1, 20)):
    """The client dataset options (`data.client_dataset_options`) on and off, interleaved, for the course's
    FedAvg and TFF's `build_weighted_fed_avg` (with the iterator loop the course uses, and with TFF's default
    dataset-reduce loop), against Keras `fit`: per-client and per-round runtime cost (a line through
    one-example rounds of 1 and 20 clients) and throughput of notebook 05's set-up."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_federated as tff

    from helpers import data, training
    from helpers.fedavg import build_fedavg_process, client_datasets, sample_clients
    from helpers.model import create_model

    train = data.load_federated_digits().train
    one_example = train.preprocess(lambda dataset: dataset.take(1))  # rounds that cost only overhead
    ids = list(train.client_ids)
    sizes = {cid: sum(1 for _ in train.create_tf_dataset_for_client(cid)) for cid in ids}
    tf_defaults = tf.data.Options()  # what a dataset gets without the course's options
    tf_defaults.experimental_optimization.apply_default_optimizations = True
    tf_defaults.autotune.enabled = True
    element_spec = data.preprocess(train.create_tf_dataset_for_client(ids[0])).element_spec
    course = build_fedavg_process(create_model, element_spec,
                                  tff.learning.optimizers.build_sgdm(learning_rate=1.0, momentum=0.9))
    # The built-in with the course's loop and with TFF's default one (the loop lever, notebook 03).
    builtins = {name: training.builtin_fedavg(create_model, element_spec, 0.05, reduce_loop=reduce_loop,
                                             server_optimizer=tff.learning.optimizers.build_sgdm(learning_rate=1.0,
                                                                                                 momentum=0.9))
                for name, reduce_loop in (("build_weighted_fed_avg", False),
                                          ("build_weighted_fed_avg, reduce loop", True))}
    steps = {"course FedAvg": lambda state, ds: course.next(state, ds, 0.05)[0],
             **{name: (lambda state, ds, p=p: p.next(state, ds).state) for name, p in builtins.items()}}
    states = {"course FedAvg": course.initialize(), **{name: p.initialize() for name, p in builtins.items()}}
    variants = [(name, on) for name in steps for on in (True, False)]

    def round_seconds(name, on, chosen, epochs, r, tiny=False):
        start = time.perf_counter()
        datasets = client_datasets(one_example if tiny else train, chosen, r, epochs, batch_size)
        datasets = datasets if on else [d.with_options(tf_defaults) for d in datasets]
        states[name] = steps[name](states[name], datasets)
        return time.perf_counter() - start

    x, y = data.pooled("train")
    inputs = data.to_model_input(x)
    fit_model = create_model()
    fit_model.compile(optimizer=tf.keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    for name, on in variants:  # warm-up: first calls trace and compile
        round_seconds(name, on, ids[:clients_per_round], 1, 0)
    fit_model.fit(inputs, y, batch_size=batch_size, epochs=1, verbose=0)
    rows = {f"{name}, options {'on' if on else 'off'}": {"per_client_s": [], "per_round_s": [], "examples_per_s": []}
            for name, on in variants}
    fit_rates, ratios = [], {key: [] for key in rows}
    for i in range(repeats):
        rates = {}
        for name, on in variants:  # the variants take turns within each repetition
            key = f"{name}, options {'on' if on else 'off'}"
            tiny = []
            for cpr in tiny_clients:
                chosen = [sample_clients(ids, cpr, r, seed=1_000 * i + cpr) for r in range(3)]
                tiny.append(statistics.median(round_seconds(name, on, c, 1, r, tiny=True)
                                              for r, c in enumerate(chosen)))
            per_client, per_round = np.polyfit(tiny_clients, tiny, 1)
            rows[key]["per_client_s"].append(float(per_client))
            rows[key]["per_round_s"].append(float(per_round))
            seconds = examples = 0
            for r in range(2):
                chosen = sample_clients(ids, clients_per_round, r, seed=1_000 * i + 5)
                seconds += round_seconds(name, on, chosen, local_epochs, r)
                examples += local_epochs * sum(sizes[c] for c in chosen)
            rates[key] = examples / seconds
            rows[key]["examples_per_s"].append(rates[key])
        start = time.perf_counter()
        fit_model.fit(inputs, y, batch_size=batch_size, epochs=1, verbose=0)
        fit_rates.append(len(y) / (time.perf_counter() - start))
        for key in rows:
            ratios[key].append(rates[key] / fit_rates[-1])
    result = {key: {"per_client_s": round(statistics.median(v["per_client_s"]), 4),
                    "per_round_s": round(statistics.median(v["per_round_s"]), 4),
                    "examples_per_s": _median_min_max(v["examples_per_s"]),
                    "ratio_to_fit": round(statistics.median(ratios[key]), 2)} for key, v in rows.items()}
    return {"variants": result, "fit_examples_per_s": _median_min_max(fit_rates), "repeats": repeats,
            "clients_per_round": clients_per_round, "local_epochs": local_epochs,
            "one_example_rounds": list(tiny_clients)}


def plot_round_cost(cost, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([c["clients_per_round"] for c in cost], [c["median_round_s"] for c in cost], marker="o")
    ax.set_xlabel("clients per round")
    ax.set_ylabel("seconds per round (median)")
    ax.set_title("cost of a FedAvg round (3 local epochs)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="run the notebooks in quick mode")
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--dataset-options", action="store_true",
                        help="also measure the client dataset options on and off (notebook 09 shows the same)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="run only the notebooks whose name contains this, e.g. 05_")
    parser.add_argument("--cpus", type=int, default=0,
                        help="pin the benchmark (and the kernels it starts) to this many cores, e.g. 1 for a "
                             "one-core laptop or Binder session")
    args = parser.parse_args()
    if args.cpus:
        if not 1 <= args.cpus <= len(os.sched_getaffinity(0)):
            parser.error(f"--cpus must be between 1 and {len(os.sched_getaffinity(0))}, "
                         "the cores this machine lets us use")
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:args.cpus]))  # kernels inherit it

    BUILD.mkdir(exist_ok=True)
    result = {"machine": {"cpus": len(os.sched_getaffinity(0)), "processor": platform.processor() or platform.machine(),
                          "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}}
    if not args.skip_notebooks:
        result["notebooks"] = []
        paths = [p for p in nbwriter.NOTEBOOKS if args.only in p.name]
        if not paths:
            parser.error(f"no notebook name contains {args.only!r}")
        for path in paths:
            row = run_notebook(path, args.quick)
            result["notebooks"].append(row)
            print(f"{row['name']:45s} {row['mode']:5s} {row['seconds']:7.1f} s {row['peak_rss_mb']:6d} MB  "
                  f"{'ok' if row['ok'] else 'FAILED ' + row.get('error', '')}", flush=True)
        total = sum(r["seconds"] for r in result["notebooks"])
        peak = max(r["peak_rss_mb"] for r in result["notebooks"])
        print(f"{'all notebooks run' if not args.only else 'notebooks run':45s} {'':5s} "
              f"{total:7.1f} s {peak:6d} MB (max)")
        over = [r["name"] for r in result["notebooks"] if r["peak_rss_mb"] > BINDER_MEMORY_MB]
        result["binder_memory_limit_mb"] = BINDER_MEMORY_MB
        print(f"Binder's {BINDER_MEMORY_MB} MB limit: " + (f"EXCEEDED by {', '.join(over)}" if over else
              f"every notebook stays below it (peak {peak} MB, kernel and TFF workers together)"))
    if not args.skip_throughput:
        t = measure_throughput(args.repeats)
        result["throughput"] = t
        plot_round_cost(t["round_cost"], BUILD / "round_cost.png")
        print(f"\nthroughput, batch {t['batch_size']}, median of {t['repeats']} repeats (min-max), examples/s:")
        for name, key in (("FedAvg (notebook 05 set-up)", "federated"), ("Keras fit", "centralized"),
                          ("compiled tf.function loop", "compiled_loop")):
            s = t["spread"][key]
            print(f"  {name:30s} {s['median']:8.0f}  ({s['min']:.0f}-{s['max']:.0f})")
        r, rc = t["spread"]["ratio"], t["spread"]["ratio_to_compiled"]
        print(f"  ratio federated/fit {t['ratio']} ({r['min']}-{r['max']}), "
              f"federated/compiled {t['ratio_to_compiled']} "
              f"({rc['min']}-{rc['max']}), medians of per-repetition ratios; first round "
              f"{t['first_round_s']} s, first fit epoch {t['first_fit_epoch_s']} s")
        print("  round cost:", ", ".join(f"{c['clients_per_round']} clients {c['median_round_s']} s"
                                         for c in t["round_cost"]))
        o = t["overhead"]
        print(f"  overhead: {o['per_round_s']} s per round + {o['per_client_s']} s per client (one-example rounds; "
              f"{o['python_dataset_build_s_per_client']} s of it building a client's dataset in Python) = "
              f"{o['share_of_steady_round']:.0%} of a steady round; "
              f"without it {o['training_examples_per_s_without_overhead']} examples/s")
    if args.dataset_options:
        o = measure_dataset_options(args.repeats)
        result["dataset_options"] = o
        print(f"\nclient dataset options on/off, interleaved, median of {o['repeats']} "
              f"(fit {o['fit_examples_per_s']['median']:.0f} examples/s):")
        for key, v in o["variants"].items():
            rate = v["examples_per_s"]
            print(f"  {key:52s} {v['per_client_s']:.4f} s per client + {v['per_round_s']:.4f} s per round; "
                  f"{rate['median']:8.0f} examples/s ({rate['min']:.0f}-{rate['max']:.0f}), "
                  f"{v['ratio_to_fit']} of fit")
    # one file per kind of run, so a quick or one-core run never replaces the full-mode figures
    path = BUILD / ("bench" + ("-quick" if args.quick else "") + (f"-{args.cpus}cpu" if args.cpus else "") + ".json")
    if path.exists() and (args.skip_notebooks or args.skip_throughput or args.only):  # keep what was not re-run
        previous = json.loads(path.read_text())
        if args.only and "notebooks" in result:
            fresh = {row["name"] for row in result["notebooks"]}
            result["notebooks"] = sorted([row for row in previous.get("notebooks", []) if row["name"] not in fresh]
                                         + result["notebooks"], key=lambda row: row["name"])
        result = {**previous, **result}
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
