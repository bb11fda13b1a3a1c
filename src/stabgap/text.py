"""Plain-text tables for the terminal: columns as wide as their widest cell."""

from __future__ import annotations

from collections.abc import Sequence


def aligned(rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """`rows` as lines of columns, each as wide as its widest cell and two spaces apart (a
    long name, a plugin's say, never runs into the next column): the first `left` columns
    flush left, the others flush right. A row shorter than the header ends in a note that
    starts where its column does and widens nothing.

    Example:
        >>> for line in aligned([("part", "FLOPs"), ("a-long-name", "1.000 k"), ("b", "2")]):
        ...     print(line)
        part           FLOPs
        a-long-name  1.000 k
        b                  2
    """
    n = len(rows[0])
    widths = [0] * n
    for row in rows:
        for i, cell in enumerate(row if len(row) == n else row[:-1]):
            widths[i] = max(widths[i], len(cell))

    def cell(row: Sequence[str], i: int) -> str:
        if len(row) < n and i == len(row) - 1:  # a note
            return row[i]
        return row[i].ljust(widths[i]) if i < left else row[i].rjust(widths[i])

    return ["  ".join(cell(row, i) for i in range(len(row))).rstrip() for row in rows]
