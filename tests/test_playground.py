"""Notebook 06's playground: a run adds a curve; bad settings get a message, not a traceback."""
import pytest

from helpers import data, playground, populations, training, simulation
from helpers.model import create_model


@pytest.fixture(scope="module")
def panel():
    train_ids, _ = data.split_validation_writers(data.load_arrays()["client_ids"])
    writers = populations.writer_clients(train_ids)
    test_set = training.Evaluator(create_model, *data.pooled("test"))
    return playground.Playground(create_model, simulation.Trainer(create_model), writers, test_set,
                                 rounds=2)


@pytest.mark.parametrize("control,value,message", [
    ("alpha", 0.0, "α must be positive"), ("alpha", -1.0, "α must be positive"),
    ("clients_per_round", 91, "between 1 and 90"), ("clients_per_round", 0, "between 1 and 90"),
    ("clients_per_round", 40, "at most 30"), ("rate", 0.0, "server rate must be positive")])
def test_bad_settings_get_a_message_and_no_curve(panel, control, value, message):
    widget = getattr(panel, control)
    good, before = widget.value, len(panel.curves)
    widget.value = value
    try:
        assert panel.run() is None
        assert message in panel.message.value and len(panel.curves) == before
    finally:
        widget.value = good


def test_each_run_adds_a_curve_and_keeps_the_others(panel):
    panel.clear()
    first = panel.run()
    panel.clients_per_round.value, panel.drop_rate.value, panel.correlated.value = 5, 0.5, True
    panel.optimizer.value, panel.rate.value = "FedAvgM", 0.3
    second = panel.run()
    assert len(first.accuracy) == len(second.accuracy) == 3
    assert [label.split(",")[1].strip() for label, _ in panel.curves] == ["10/round", "5/round"]
    assert "corr." in panel.curves[1][0] and panel.status.value == "2 runs on the plot"
    panel.clear()
    assert panel.status.value == "0 runs on the plot"
