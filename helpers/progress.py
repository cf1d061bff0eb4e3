"""One progress bar for long loops (a widget in Jupyter, text in a terminal or CI log)."""
from tqdm.auto import tqdm


def progress(iterable=None, total=None, desc=None, **kwargs):
    """`for round_num in progress(range(ROUNDS), desc="rounds"): ...`; `.set_postfix(loss=...)` to show metrics."""
    return tqdm(iterable, total=total, desc=desc, mininterval=0.5, **kwargs)
