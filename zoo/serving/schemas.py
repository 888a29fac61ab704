"""What the API accepts: request bodies (unknown fields refused, types checked by pydantic) and the limits that
keep one request from holding the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


@dataclass(frozen=True)
class ApiLimits:
    body_bytes: int = 64_000
    text_chars: int = 1_000  # one text to translate, or a prompt
    texts: int = 64  # texts per translate request
    beam_size: int = 10
    new_tokens: int = 2_000  # a generation's length
    waiting: int = 256  # jobs queued per model beyond the running batch: more answer 503
    wait_seconds: float = 60.0  # a request not done by then answers 504
    batch_rows: int = 64  # rows decoded together


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DecodingFields(Strict):
    """The decoding options of `zoo translate` / `zoo generate` (zoo.generation.options.DecodingOptions)."""

    strategy: Literal["greedy", "beam", "sample"] = "greedy"
    beam_size: int = Field(5, ge=1)
    n_best: int = Field(1, ge=1)
    length_penalty: float = 1.0
    min_len: int = Field(0, ge=0)
    temperature: float = Field(1.0, gt=0)
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None

    def options(self) -> dict:
        """The options this request set (the model's defaults and DecodingOptions' fill in the rest)."""
        return self.model_dump(exclude_unset=True, exclude={"model", "text", "texts", "prompt", "length", "stream"})


class TranslateRequest(DecodingFields):
    model: str
    text: str | None = None
    texts: list[str] | None = None
    max_len_a: float | None = Field(None, ge=0)
    max_len_b: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def one_of_text_and_texts(self):
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' (a sentence) and 'texts' (a list of sentences)")
        return self


class GenerateRequest(DecodingFields):
    model: str
    prompt: str
    length: int = Field(200, ge=1)
    stream: bool = False


class CompletionRequest(BaseModel):
    """OpenAI's /v1/completions, the fields a character model can honour; others are refused by name."""

    model_config = ConfigDict(extra="forbid")
    model: str
    prompt: str
    max_tokens: int = Field(16, ge=1)
    temperature: float = Field(1.0, ge=0)  # 0: greedy, as OpenAI's clients mean it
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = None
    stream: bool = False
    n: int = Field(1, ge=1, le=1)
    user: str | None = None  # accepted and ignored, as clients send it
