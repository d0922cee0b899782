"""Tables of scores shared by train.reproduce and train.collect: markdown and CSV."""

import csv


def markdown_lines(header, rows):
    """A markdown table: the `header` cells, then one line per row of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def write_csv(path, columns, rows):
    """`rows` (dicts of cells) under the `columns` header, as CSV."""
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, columns)
        writer.writeheader()
        writer.writerows(rows)
