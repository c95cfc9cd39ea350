"""What the run report (biosig/report.py) and the sweep report (biosig/sweep/report.py) share:
the panels laid out in one figure, log axes whose labels do not collide, and the two files
(report.png, and report.html with the picture inside). matplotlib is imported inside the
functions: it is optional."""
import base64
import html
import io
import math
import os
import textwrap

from ..atomic import atomic_path

FILES = ("report.png", "report.html")
STYLES = ("-", "--", "-.", ":")


def legend_below(ax, handles, labels):
    """A legend under the panel's x axis: it never covers a curve (nor is covered by a twin axis)."""
    ax.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)


def _short(value, _=None):
    return f"{value:g}"


def _exponent(value, _=None):
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def log_axis(ax, which, low, high):
    """Put one axis ('x' or 'y') of `ax` on a log scale for values in [low, high] with labels that
    do not collide: one plain form (0.002, or 2e-4 when the values go under 0.001; not 2x10^-4)
    on decades only, or on 1-2-5 steps when the values span under three decades (matplotlib's
    default labels minor ticks there too, in a second size, on top of each other)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    decades = math.log10(high / low)
    axis.set_major_locator(LogLocator(base=10, subs=(1.0,) if decades >= 3 else (1.0, 2.0, 5.0), numticks=8))
    axis.set_major_formatter(FuncFormatter(_exponent if low < 1e-3 else _short))
    axis.set_minor_formatter(NullFormatter())


def figure(panels, data, title, footer=None):
    """The panels, two to a row (a wide one takes a row; a sole one the whole figure), as a
    matplotlib Figure. panels: [(name, function(ax, data), wide)]; footer: lines under them."""
    from matplotlib.figure import Figure
    columns = 1 if len(panels) == 1 else 2
    row, col, places = 0, 0, []
    for _, _, wide in panels:
        if wide and col:                        # a wide panel starts a row of its own
            row, col = row + 1, 0
        places.append((row, slice(0, columns) if wide else col))
        row, col = (row + 1, 0) if wide or col or columns == 1 else (row, 1)
    n_rows = row + (1 if col else 0)
    width = 6 * columns + (1 if columns == 1 else 0)            # inches
    footer = [part for line in footer or () for part in textwrap.wrap(line, width * 15)]   # ~15 chars an inch
    fig = Figure(figsize=(width, 4 * n_rows + 0.2 * len(footer)), layout="constrained")
    grid = fig.add_gridspec(n_rows, columns)
    for (name, fn, wide), (r, c) in zip(panels, places):
        fn(fig.add_subplot(grid[r, c]), data)
    fig.suptitle(title)
    if footer:
        fig.supxlabel("\n".join(footer), fontsize=9)
    return fig


def png_bytes(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#f3f3f3}"
         "td.l,th.l{text-align:left}img{max-width:100%}pre{white-space:pre-wrap}")


def cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def html_table(header, rows, left=1):
    """An HTML table; the first `left` columns are left-aligned (names)."""
    def cells(tag, values):
        return "".join(f"<{tag}{' class=l' if i < left else ''}>{html.escape(cell(v))}</{tag}>"
                       for i, v in enumerate(values))
    return ("<table>" + (f"<tr>{cells('th', header)}</tr>" if header else "")
            + "".join("<tr>" + cells("td", r) + "</tr>" for r in rows) + "</table>")


def html_lines(lines):
    """Text lines as printed in the terminal (the sweep's best point and its honest report)."""
    return "<pre>" + html.escape("\n".join(lines)) + "</pre>"


def write_files(directory, png, title, sections):
    """report.png and report.html (the PNG inside, base64), each written atomically."""
    with atomic_path(os.path.join(directory, "report.png")) as tmp:
        with open(tmp, "wb") as f:
            f.write(png)
    body = "".join(f"<h2>{html.escape(head)}</h2>{part}" for head, part in sections)
    page = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<img id=\"report\" alt=\"{html.escape(title)}: plots\" "
            f"src=\"data:image/png;base64,{base64.b64encode(png).decode()}\">{body}</body></html>\n")
    with atomic_path(os.path.join(directory, "report.html")) as tmp:
        with open(tmp, "w") as f:
            f.write(page)
    return [os.path.join(directory, name) for name in FILES]
