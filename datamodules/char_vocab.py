"""A character vocabulary: the ordered characters of the training text, id = position."""

from __future__ import annotations

import torch


class CharVocab:
    """Maps characters to ids and back. Stored in checkpoints as the string ``chars``."""

    def __init__(self, chars: str):
        if len(set(chars)) != len(chars):
            raise ValueError("vocabulary characters must be unique")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """Ids of ``text`` (vectorised: a few ms per MB); unknown characters raise ``ValueError``."""
        unknown = self.unknown_chars(text)
        if unknown:
            raise ValueError(
                f"characters not in the model's vocabulary: {unknown!r}. "
                f"Fix: use only these characters: {self.chars!r}."
            )
        return self._lookup(text)

    def unknown_chars(self, text: str) -> str:
        return "".join(sorted(set(text) - self.index.keys()))

    def _lookup(self, text: str) -> torch.Tensor:
        if not text:
            return torch.zeros(0, dtype=torch.long)
        codes = torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32).long()
        points, order = torch.tensor([ord(c) for c in self.chars]).sort()
        return order[torch.searchsorted(points, codes).clamp(max=len(points) - 1)]

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        return "".join(self.chars[i] for i in torch.as_tensor(ids).tolist())
