"""Notebook 06's playground: controls for one short FedAvg run (`helpers.simulation`) on a label-skewed
population of the training writers' images; each run's accuracy curve, on the evaluator's images (the
validation writers': the playground is for choosing settings), is added to a plot that keeps the
earlier ones. Bad settings get a message in the panel, not a traceback."""
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import clear_output, display

from helpers import populations, training, runtime, simulation

RARE = [7, 8, 9]  # correlated drop-outs: clients holding these digits drop more often (as in notebook 06)
MAX_CLIENTS_PER_ROUND = 30  # with 5 local epochs, 30 clients for 15 rounds take about 20 s on two cores


class PlaygroundError(ValueError):
    """A setting the playground cannot run, with what to change."""


def _server_optimizer(name, rate):
    import tensorflow_federated as tff

    if name == "FedAvg":
        return tff.learning.optimizers.build_sgdm(learning_rate=rate)
    if name == "FedAvgM":
        return tff.learning.optimizers.build_sgdm(learning_rate=rate, momentum=0.9)
    return tff.learning.optimizers.build_adam(learning_rate=rate)


class Playground:
    def __init__(self, model_fn, trainer, writers, evaluator, seed=42, rounds=15):
        self.model_fn, self.trainer, self.evaluator, self.seed, self.rounds = model_fn, trainer, evaluator, seed, rounds
        self.writers, self.pool = writers, np.concatenate(writers.labels)
        self.num_clients, self._populations, self.curves = len(writers.labels), {}, []
        style = {"description_width": "150px"}
        self.alpha = widgets.FloatText(value=0.1, description="label skew α", style=style)
        self.clients_per_round = widgets.IntText(value=10, description="clients per round", style=style)
        self.local_epochs = widgets.IntSlider(value=1, min=1, max=5, description="local epochs", style=style)
        self.optimizer = widgets.Dropdown(options=["FedAvg", "FedAvgM", "FedAdam"], value="FedAvg",
                                          description="server optimizer", style=style)
        self.rate = widgets.FloatText(value=1.0, description="server rate", style=style)
        self.drop_rate = widgets.FloatSlider(value=0.0, min=0.0, max=0.9, step=0.1, description="drop-out rate",
                                             style=style)
        self.correlated = widgets.Checkbox(value=False, description="drop-outs hit clients holding 7-9", indent=False,
                                          layout=widgets.Layout(width="300px"))
        self.run_button = widgets.Button(description="Run", button_style="primary")
        self.clear_button = widgets.Button(description="Clear plot")
        self.message = widgets.HTML()
        self.status = widgets.Label()
        self.output = widgets.Output()
        self.run_button.on_click(self.run)
        self.clear_button.on_click(self.clear)

    def settings(self):
        """The controls' values, checked; raises PlaygroundError saying what to change."""
        alpha, per_round, rate = self.alpha.value, self.clients_per_round.value, self.rate.value
        if not alpha > 0:
            raise PlaygroundError(f"α must be positive (got {alpha:g}): 0.1 gives each client a few digits, "
                                  f"100 is close to IID.")
        if not 1 <= per_round <= self.num_clients:
            raise PlaygroundError(f"clients per round must be between 1 and {self.num_clients}, the number of clients "
                                  f"(got {per_round}).")
        if per_round > MAX_CLIENTS_PER_ROUND:
            raise PlaygroundError(f"at most {MAX_CLIENTS_PER_ROUND} clients per round here (got {per_round}): "
                                  f"more would "
                                  f"make a run last well over 20 seconds on two cores.")
        if not rate > 0:
            raise PlaygroundError(f"the server rate must be positive (got {rate:g}): try 1 for FedAvg, "
                                  f"0.1 for FedAvgM, "
                                  f"0.01 for FedAdam.")
        return dict(alpha=alpha, clients_per_round=per_round, local_epochs=self.local_epochs.value,
                    optimizer=self.optimizer.value, rate=rate, drop_rate=self.drop_rate.value,
                    correlated=self.correlated.value)

    def population(self, alpha):
        if alpha not in self._populations:
            parts = populations.label_skew_parts(self.pool, self.num_clients, alpha, seed=self.seed)
            self._populations[alpha] = populations.redeal(self.writers, parts)
        return self._populations[alpha]

    def train(self, alpha, clients_per_round, local_epochs, optimizer, rate, drop_rate, correlated):
        clients = self.population(alpha)
        if correlated:  # as in notebook 06: clients holding mostly 7-9 drop, the others never, same mean rate
            mostly_rare = np.array([np.isin(labels, RARE).mean() > 0.5 for labels in clients.labels])
            rates = np.where(mostly_rare, min(0.95, drop_rate / max(mostly_rare.mean(), 1e-9)), 0.0)
        else:
            rates = np.full(len(clients.labels), drop_rate)

        def reports(sampled, round_num, seed):
            return [cid for cid in sampled if np.random.default_rng([seed, round_num, cid, 1]).random() >= rates[cid]]
        step = simulation.FedAvgStep(
            self.trainer, clients, seed=self.seed, clients_per_round=clients_per_round,
            local_epochs=local_epochs, server_optimizer=_server_optimizer(optimizer, rate),
            reports=reports if drop_rate > 0 else None)
        start = training.seeded_weights(self.model_fn, self.seed)
        return training.run(step, self.rounds, self.evaluator, start)

    def run(self, _button=None):
        """Train with the controls' settings and add the curve; a bad setting only writes a message."""
        try:
            settings = self.settings()
        except PlaygroundError as error:
            self.message.value = f"<b>⚠ {error}</b>"
            return None
        self.message.value = "running…"
        with runtime.Timer() as timer:
            history = self.train(**settings)
        label = (f"α={settings['alpha']:g}, {settings['clients_per_round']}/round, E={settings['local_epochs']}, "
                 f"{settings['optimizer']} {settings['rate']:g}"
                 + (f", drop {settings['drop_rate']:.0%}{' corr.' if settings['correlated'] else ''}"
                    if settings['drop_rate'] else ""))
        self.curves.append((label, history.accuracy))
        self.message.value = f"✓ {label}: final accuracy {history.accuracy[-1]:.3f}, {timer.seconds:.1f} s"
        self.draw()
        return history

    def clear(self, _button=None):
        self.curves = []
        self.message.value = ""
        self.draw()

    def draw(self):
        self.status.value = f"{len(self.curves)} run{'s' if len(self.curves) != 1 else ''} on the plot"
        with self.output:
            clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(7, 3.5))
            for label, accuracy in self.curves:
                ax.plot(np.arange(len(accuracy)), accuracy, label=label)
            ax.set(xlabel="round", ylabel="validation accuracy", ylim=(0, 1))
            ax.grid(alpha=0.3)
            if self.curves:
                ax.legend(fontsize=7)
            plt.show()

    def show(self):
        controls = widgets.VBox([self.alpha, self.clients_per_round, self.local_epochs, self.optimizer, self.rate,
                                 self.drop_rate, self.correlated, widgets.HBox([self.run_button, self.clear_button]),
                                 self.message, self.status])
        display(widgets.HBox([controls, self.output]))
