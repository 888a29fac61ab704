"""Named parts of a model (embeddings, encoder, decoder, output, layers.N), for freezing them while fine-tuning
(callbacks.FreezeParts)."""

from __future__ import annotations

import re

from torch import nn


class FreezableParts:
    """Named parts of a model that a fine-tuning run may freeze (``callbacks.FreezeParts``). ``PARTS`` maps a part's
    name to a regular expression over parameter names; ``{n}`` in a name stands for a layer number. Tied weights are
    one parameter under two names: freezing the one freezes the other."""

    PARTS: dict[str, str] = {}

    def parameters_of(self, part: str) -> list[nn.Parameter]:
        for name, pattern in self.PARTS.items():
            template = re.escape(name).replace(r"\{n\}", r"(?P<n>\d+)")
            found = re.fullmatch(template, part)
            if found:
                regex = re.compile(pattern.format(n=found.group("n")) if "n" in found.groupdict() else pattern)
                chosen = {id(p): p for key, p in self.named_parameters(remove_duplicate=False) if regex.match(key)}
                if chosen:
                    return list(chosen.values())  # a tied weight once
        known = ", ".join(self.part_names())
        raise ValueError(f"{type(self).__name__} has no part {part!r}. Fix: freeze some of: {known}.")

    def part_names(self) -> list[str]:
        """Every part by name, layers numbered (e.g. embeddings, layers.0, layers.1, output)."""
        names = []
        for name, pattern in self.PARTS.items():
            if "{n}" not in name:
                names.append(name)
                continue
            n = 0
            while any(re.match(pattern.format(n=n), key) for key, _ in self.named_parameters(remove_duplicate=False)):
                names.append(name.format(n=n))
                n += 1
        return names
