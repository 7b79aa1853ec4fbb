"""Docker's table layout: Go's text/tabwriter as the CLI configures it (minwidth 10, tabwidth 1,
padding 3, spaces, no flags). Cells end with a tab; a column is as wide as its widest cell plus
the padding, but never narrower than the minimum width; the text after a line's last tab is
written as it is, so an empty last column leaves the previous column's padding behind."""

import unicodedata

MIN_WIDTH = 10
PADDING = 3


def display_width(text: str) -> int:
    """Terminal columns, as go-runewidth counts them: wide East Asian characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(cell: str, width: int) -> str:
    return cell + " " * (width - display_width(cell))


def render(lines: list[str]) -> str:
    """Lay out tab-separated lines (without their newlines) as Go's tabwriter would."""
    rows = [line.split("\t") for line in lines]
    out: list[str] = []
    # Go aligns a column over the block of consecutive lines that have a cell there; list
    # tables have the same cells on every line, but custom formats may not.
    out_rows: list[list[str]] = [[] for _ in rows]
    _format_block(rows, 0, 0, len(rows), out_rows)
    for row, cells in zip(rows, out_rows, strict=True):
        out.append("".join(cells) + row[-1])
    return "".join(line + "\n" for line in out)


def _format_block(
    rows: list[list[str]], column: int, start: int, end: int, out: list[list[str]]
) -> None:
    i = start
    while i < end:
        if len(rows[i]) - 1 <= column:
            i += 1
            continue
        j = i
        width = MIN_WIDTH
        while j < end and len(rows[j]) - 1 > column:
            width = max(width, display_width(rows[j][column]) + PADDING)
            j += 1
        for k in range(i, j):
            out[k].append(_pad(rows[k][column], width))
        _format_block(rows, column + 1, i, j, out)
        i = j
