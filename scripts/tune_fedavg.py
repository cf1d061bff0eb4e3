"""Choose notebook 05's hyper-parameters on validation writers, never on the test split.

    .venv/bin/python scripts/tune_fedavg.py            # the grid below, about 8 minutes on 2 cores
    .venv/bin/python scripts/tune_fedavg.py --quick    # 3 rounds per setting: checks the code path

`data.split_validation_writers` holds 14 of the 104 training writers out. Each setting trains the
course's FedAvg (`helpers.fedavg.build_fedavg_process`, sampled writers, cosine-decayed client rate,
server SGD with momentum) on the other 90 and measures the global model on every example of the
14 validation writers, every few rounds. Each setting changes one thing from notebook 05's, and
settings that cost more per round get proportionally fewer rounds, so none costs more than notebook
05's. `--seeds 1 2` repeats settings from other initial models and writer samples. Results:
build/tune_fedavg.json and a table; notebook 05 quotes them.
"""
import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import runtime, data  # noqa: E402

BASE = dict(local_epochs=3, rounds=170, clients_per_round=5, client_lr=(0.1, 0.005), server_lr=1.0, server_momentum=0.9)
GRID = {  # name: what changes from notebook 05's setting
    "05's setting": {},
    "1 local epoch": dict(local_epochs=1),
    "5 local epochs (100 rounds)": dict(local_epochs=5, rounds=100),
    # Server optimisers on grids of the same size (3 rates, about 3x apart), so neither wins by its step size:
    # with momentum b, SGD's steps are about 1/(1 - b) times longer than without (10x for 0.9).
    "server momentum 0.9, rate 0.3": dict(server_lr=0.3),
    "server momentum 0.9, rate 3": dict(server_lr=3.0),
    "no server momentum, rate 1": dict(server_momentum=0.0),
    "no server momentum, rate 3": dict(server_momentum=0.0, server_lr=3.0),
    "no server momentum, rate 10": dict(server_momentum=0.0, server_lr=10.0),
    "server momentum 0.95, rate 0.5": dict(server_momentum=0.95, server_lr=0.5),
    "client rate 0.2 -> 0.005": dict(client_lr=(0.2, 0.005)),
    "client rate 0.1, constant": dict(client_lr=(0.1, 0.1)),
    "10 writers a round (85 rounds)": dict(clients_per_round=10, rounds=85),
}


def run(setting, train_data, train_ids, validation, quick, seed=None, checkpoints=10):
    import tensorflow_federated as tff
    from helpers import fedavg
    from helpers.model import create_model

    rounds = 3 if quick else setting["rounds"]
    element_spec = data.preprocess(train_data.create_tf_dataset_for_client(train_ids[0])).element_spec
    process = fedavg.build_fedavg_process(create_model, element_spec, tff.learning.optimizers.build_sgdm(
        learning_rate=setting["server_lr"], momentum=setting["server_momentum"]))
    model = create_model()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    seed = runtime.DEFAULT_SEED if seed is None else seed
    runtime.set_seed(seed)  # the initial model
    state, curve = process.initialize(), {}
    every = max(rounds // checkpoints, 1)
    for round_num in range(rounds):  # notebook 05's loop, with its saved functions
        sampled = fedavg.sample_clients(train_ids, setting["clients_per_round"], round_num, seed)
        datasets = fedavg.client_datasets(train_data, sampled, round_num, setting["local_epochs"], 20)
        lr = fedavg.client_learning_rate(round_num, rounds, *setting["client_lr"])
        state, _ = process.next(state, datasets, lr)
        if (round_num + 1) % every == 0 or round_num == rounds - 1:
            model.set_weights(list(state["weights"]))
            curve[round_num + 1] = float(model.evaluate(*validation, verbose=0, batch_size=500)[1])
    return curve


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds per setting (a smoke test)")
    parser.add_argument("--only", default="", help="run only the settings whose name contains this")
    parser.add_argument("--seeds", type=int, nargs="+", default=[None],
                        help="seeds of the initial model and the writers' sampling (default: the course's)")
    parser.add_argument("--out", default=str(ROOT / "build" / "tune_fedavg.json"))
    args = parser.parse_args()
    runtime.setup()

    train_data = data.load_federated_digits().train
    train_ids, validation_ids = data.split_validation_writers(train_data.client_ids)
    pixels, labels = data.pooled("train", client_ids=validation_ids)
    validation = (data.to_model_input(pixels), labels)
    print(f"{len(train_ids)} training writers, {len(validation_ids)} validation writers "
          f"({len(labels)} validation examples)")

    results = {}
    for name, change in GRID.items():
        if args.only not in name:
            continue
        setting = {**BASE, **change}
        for seed in args.seeds:
            start = time.perf_counter()
            curve = run(setting, train_data, train_ids, validation, args.quick, seed)
            seconds = time.perf_counter() - start
            key = name if seed is None else f"{name}, seed {seed}"
            results[key] = dict(setting=setting, seed=seed, validation_accuracy=curve, seconds=round(seconds, 1))
            print(f"{key:32s} final {list(curve.values())[-1]:.4f}  best {max(curve.values()):.4f} "
                  f"(round {max(curve, key=curve.get)})  {seconds:.0f} s", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(train_writers=len(train_ids), validation_writers=validation_ids,
                                   quick=args.quick, results=results), indent=2))
    print("written", out)


if __name__ == "__main__":
    main()
