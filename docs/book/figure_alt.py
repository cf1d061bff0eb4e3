"""IPython start-up file for the kernels that run notebooks for the course's website (scripts/book.py).

A matplotlib figure's PNG carries no description, so a screen reader on the site would say "image".
This wraps the kernel's display formatter: whenever a matplotlib Figure is displayed, the output's
metadata gets `{"image/png": {"alt": "..."}}`, a sentence built from what the figure itself holds
(suptitle, each panel's title, axis labels or its categories, legend entries, where each labelled line
starts and ends, a heat map's range, the text of a diagram).
scripts/book.py copies this file into the IPYTHONDIR it gives those kernels (and the test session's,
when conftest.py records nbval's outputs); it changes no output, only adds metadata.
"""


def _course_install_figure_alt():
    import re

    def describe(fig):
        def text(artist):
            return artist.get_text().strip().replace("\n", " ") if artist is not None else ""

        def clip(items, n=6, sep=", "):
            items = [i for i in items if i and not i.startswith("_")]
            return sep.join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")

        def categories(ticklabels):
            """Tick labels that name things (populations, settings), not numbers."""
            names = [text(t) for t in ticklabels]
            # numbers, also as mathtext ($10^{-1}$), are a scale, not categories
            return [n for n in names if n and not n.startswith("$") and not re.fullmatch(r"[−\-\d.,e+% ]+", n)]

        def ends(ax):
            """Where each labelled line starts and ends: what a reader of the plot sees first."""
            found = []
            for line in ax.lines:
                label, ys = line.get_label(), list(line.get_ydata())
                if label.startswith("_") or not ys:
                    continue
                try:
                    found.append(f"{label} {float(ys[0]):.3g} to {float(ys[-1]):.3g}")
                except (TypeError, ValueError):
                    continue
            return found

        panels, images = [], 0
        # a colorbar is an axis of its heat map, not a panel of its own
        visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
        for ax in visible:
            title = text(ax.title) or text(getattr(ax, "_left_title", None)) or text(getattr(ax, "_right_title", None))
            xlabel, ylabel = ax.get_xlabel().strip(), ax.get_ylabel().strip()
            ylabel = ylabel or clip(categories(ax.get_yticklabels()), n=8)
            xlabel = xlabel or clip(categories(ax.get_xticklabels()), n=8)
            if ax.images and not (ax.lines or ax.patches or ax.collections) and not (xlabel or ylabel):
                images += 1
                continue
            kinds = []
            if ax.lines:
                kinds.append("lines")
            if ax.patches:
                kinds.append("bars" if any(type(p).__name__ == "Rectangle" for p in ax.patches) else "shapes")
            if ax.collections:
                kinds.append("points or shaded bands")
            if ax.images:
                kinds.append("a heat map")
            labels = clip([text(t) for t in ax.texts], n=8, sep="; ")
            if not (title or xlabel or ylabel or kinds) and labels:
                panels.append(f"a diagram with the labels {labels}")
                continue
            parts = []
            if ylabel and xlabel:
                parts.append(f"{ylabel} against {xlabel}")
            elif ylabel or xlabel:
                parts.append(f"{' and '.join(kinds) or 'values'} by {ylabel or xlabel}")
            elif kinds:
                parts.append(" and ".join(kinds))
            legend = ax.get_legend()
            if legend is not None:
                entries = clip([text(t) for t in legend.get_texts()], sep="; ")  # entries may hold commas
                if entries:
                    parts.append(f"for {entries}")
            if labels and not (xlabel or ylabel or legend):
                parts.append(f"with the labels {labels}")
            line_ends = clip(ends(ax), n=6, sep="; ")
            if line_ends:
                parts.append(f"({line_ends})")
            if ax.images:
                try:
                    values = ax.images[0].get_array()
                    parts.append(f"(values {float(values.min()):.3g} to {float(values.max()):.3g})")
                except (AttributeError, TypeError, ValueError):
                    pass
            what = " ".join(parts)
            panels.append(f"'{title}': {what}" if title and what else f"'{title}'" if title else what)
        sentences = []
        suptitle = text(getattr(fig, "_suptitle", None))
        if suptitle:
            sentences.append(f"Figure: {suptitle}.")
        if images:
            titles = clip([text(ax.title) for ax in visible if ax.images], n=12)
            sentences.append(f"{images} small images" + (f" labelled {titles}" if titles else "") + ".")
        if panels:
            head = "" if len(panels) == 1 else f"{len(panels)} panels: "
            body = " | ".join(panels)
            sentences.append(head + body[0].upper() + body[1:] + ".")
        return " ".join(sentences)[:600]

    import sys

    try:
        shell = get_ipython()  # noqa: F821 (IPython's start-up files run in the shell's namespace)
    except NameError:
        return
    formatter = shell.display_formatter
    original = formatter.format

    def format_with_alt(obj, include=None, exclude=None):
        data, metadata = original(obj, include=include, exclude=exclude)
        figure_module = sys.modules.get("matplotlib.figure")
        if figure_module is not None and isinstance(obj, figure_module.Figure) and "image/png" in data:
            try:
                alt = describe(obj)
            except Exception:  # a description must never break a notebook
                alt = ""
            if alt:
                metadata = dict(metadata)
                metadata["image/png"] = {**metadata.get("image/png", {}), "alt": alt}
        return data, metadata

    formatter.format = format_with_alt


_course_install_figure_alt()
del _course_install_figure_alt
