"""The `zoo` command: Lightning's fit/validate/test from one YAML file (app.py) and the inference commands."""

from zoo.cli.app import ZooCLI, main

__all__ = ["ZooCLI", "main"]
