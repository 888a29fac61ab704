"""`zoo list`: the pretrained models, as a table (zoo.list_pretrained() gives the same rows to Python)."""

from __future__ import annotations

import argparse

from zoo.hub.pretrained import list_pretrained

COLUMNS = ("name", "family", "data", "metric", "size_mb")


def list_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="zoo list",
        description="The pretrained models: load one with zoo.load_pretrained(NAME) or --pretrained NAME.",
    )
    parser.parse_args(argv)
    models = list_pretrained()
    rows = [{**row, "size_mb": f"{row['size_mb']} MB"} for row in models]
    header = {column: "size" if column == "size_mb" else column for column in COLUMNS}
    widths = {column: max(len(str(row[column])) for row in [header, *rows]) for column in COLUMNS}
    for row in [header, *rows]:
        print("  ".join(str(row[column]).ljust(widths[column]) for column in COLUMNS).rstrip())
    total = sum(row["size_mb"] for row in models)
    print(
        f"\n{len(rows)} models, {total:.1f} MB in all; `zoo list` names work with --pretrained and zoo.load_pretrained."
    )
