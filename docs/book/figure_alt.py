"""IPython start-up file for the kernels that run notebooks for the course's website (scripts/book.py).

A matplotlib figure's PNG carries no description, so a screen reader on the site would say "image".
This wraps the kernel's display formatter: whenever a matplotlib Figure is displayed, the output's
metadata gets `{"image/png": {"alt": "..."}}`, a sentence built from what the figure itself holds
(suptitle, each panel's title, axis labels, legend entries, what is drawn, the text of a diagram).
scripts/book.py copies this file into the IPYTHONDIR it gives those kernels (and the test session's,
when conftest.py records nbval's outputs); it changes no output, only adds metadata.
"""


def _course_install_figure_alt():
    def describe(fig):
        def text(artist):
            return artist.get_text().strip().replace("\n", " ") if artist is not None else ""

        def clip(items, n=6, sep=", "):
            items = [i for i in items if i and not i.startswith("_")]
            return sep.join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")

        panels, images = [], 0
        visible = [ax for ax in fig.axes if ax.get_visible()]
        for ax in visible:
            title = text(ax.title) or text(getattr(ax, "_left_title", None)) or text(getattr(ax, "_right_title", None))
            xlabel, ylabel = ax.get_xlabel().strip(), ax.get_ylabel().strip()
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
            parts = [f"'{title}'" if title else "a panel"]
            if ylabel or xlabel:
                parts.append(f"plots {ylabel or 'values'} against {xlabel or 'an unlabelled axis'}")
            elif kinds:
                parts.append("draws " + " and ".join(kinds))
            legend = ax.get_legend()
            if legend is not None:
                entries = clip([text(t) for t in legend.get_texts()])
                if entries:
                    parts.append(f"for {entries}")
            if labels and not (xlabel or ylabel or legend):
                parts.append(f"with the labels {labels}")
            panels.append(" ".join(parts))
        sentences = []
        suptitle = text(getattr(fig, "_suptitle", None))
        if suptitle:
            sentences.append(f"Figure: {suptitle}.")
        if images:
            titles = clip([text(ax.title) for ax in visible if ax.images], n=12)
            sentences.append(f"{images} small images" + (f" labelled {titles}" if titles else "") + ".")
        if panels:
            head = "One panel: " if len(panels) == 1 else f"{len(panels)} panels: "
            sentences.append(head + "; ".join(panels) + ".")
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
