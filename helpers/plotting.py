"""Figures the notebooks share. Each function draws on the current figure and returns the axes."""
import matplotlib.pyplot as plt
import numpy as np


def sample_grid(pixels, labels, ncols=10, nrows=2, title=None):
    """Show the first `ncols * nrows` digits (TFF convention: 1.0 = background) with their labels."""
    n = min(len(pixels), ncols * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 0.9, nrows * 1.05), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(np.asarray(pixels[i]).reshape(28, 28), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_title(str(int(labels[i])), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return axes


def plot_curves(curves, xlabel="epoch", ylabel="accuracy", title=None, ax=None, hline=None):
    """Plot {name: list of values} against 1..N; `hline=(value, label)` draws a reference line."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    if hline is not None:
        ax.axhline(hline[0], color="gray", linestyle="--", label=hline[1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_rounds(histories, ax=None, title=None, target=None, x=None):
    """Accuracy after each round (round 0 = before training) for {name: training.History}.

    `x`: {name: array} to plot against something else than the round (e.g. simulated time).
    `target=(value, label)` draws the accuracy target."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for name, history in histories.items():
        xs = np.arange(len(history.accuracy)) if x is None else x[name]
        ax.plot(xs, history.accuracy, label=name)
    if target is not None:
        ax.axhline(target[0], color="gray", linestyle="--", linewidth=1, label=target[1])
    return _accuracy_axes(ax, "round" if x is None else "simulated time", "test accuracy", title)


def _accuracy_axes(ax, xlabel, ylabel, title):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_seeds(runs, ax=None, title=None, x=None, xlabel="round", ylabel="test accuracy"):
    """{name: [training.History, one per seed]}: the mean over seeds as a line, the range between the
    lowest and the highest seed shaded. `x`: {name: array} to plot against something else than the round."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for name, histories in runs.items():
        curves = np.array([history.accuracy for history in histories])
        xs = np.arange(curves.shape[1]) if x is None else x[name]
        (line,) = ax.plot(xs, curves.mean(axis=0), label=f"{name} ({len(histories)} seeds)")
        ax.fill_between(xs, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.2, linewidth=0)
    return _accuracy_axes(ax, xlabel, ylabel, title)


def round_diagram(ax=None):
    """One FedAvg round as boxes and arrows: broadcast -> client update -> weighted mean -> server update."""
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 2.8))
    stages = [(0.0, 0.3, "server\nholds the global\nmodel w", "tff.SERVER"),
              (1.35, 0.5, "each sampled client k\nclient_update(w, its data)\n→ delta Δk, examples nk", "tff.CLIENTS"),
              (2.7, 0.32, "weighted mean\nΣ nk·Δk / Σ nk", "tff.federated_mean"),
              (3.9, 0.42, "server update\nw ← w + η · mean Δ", "tff.SERVER")]  # (x, half width, text, placement)
    for x, _, text, placement in stages:
        ax.text(x, 0.5, text, ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round,pad=0.6", facecolor="#eef3fb" if placement == "tff.SERVER" else "#fdf3e6",
                          edgecolor="gray"))
        ax.text(x, 0.08, placement, ha="center", fontsize=8, color="gray", family="monospace")
    for (x0, w0, *_), (x1, w1, *_), label in zip(stages, stages[1:], ["broadcast w", "send Δk, nk", "mean Δ"]):
        ax.annotate("", xy=(x1 - w1, 0.5), xytext=(x0 + w0, 0.5), arrowprops=dict(arrowstyle="->", lw=1.5))
        ax.text((x0 + w0 + x1 - w1) / 2, 0.58, label, ha="center", fontsize=8)
    ax.annotate("", xy=(0, 0.84), xytext=(3.9, 0.84),
                arrowprops=dict(arrowstyle="->", lw=1, color="gray", connectionstyle="arc3,rad=0.1"))
    ax.text(1.95, 1.08, "the next round starts from the new w (initialize runs once)", ha="center", fontsize=8,
            color="gray")
    ax.set_xlim(-0.45, 4.4)
    ax.set_ylim(0, 1.15)
    ax.axis("off")
    return ax
