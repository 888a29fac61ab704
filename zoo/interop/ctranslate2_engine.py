"""CTranslate2: export a zoo Transformer translator to its format, and translate with it (int8 included).

The export goes through the transformers folder (zoo/interop/transformers_export.py) and CTranslate2's own
converter for it. The folder it writes holds CTranslate2's model.bin, config.json and vocabulary, our
tokenizer.json (which appends the source <eos>) and zoo_decoding.json (the model's length limits).

``CTranslate2Translator`` answers ``encode_sources``, ``max_source_tokens`` and ``translate_n_best`` as our
models do, under the same rules (zoo/tasks/translation_inputs.py, and options.length_limits), so ``zoo translate --engine ctranslate2`` runs the same line handling (one output line per input,
too-long lines, n-best) over it. Differences from our decoding, documented rather than hidden: CTranslate2's
length penalty divides by length ** alpha (ours by GNMT's ((5 + L) / 6) ** alpha: equal at alpha 0), its scores
are normalized that way, and its length limit is per batch (a hypothesis past its own sentence's
max_len_a * source + max_len_b is cut there, as our search would have cut it).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from tokenizers import Encoding, Tokenizer

from zoo.generation.options import DecodingOptions, length_limits
from zoo.hub.atomic_writes import atomic_folder
from zoo.hub.checkpoints import CheckpointError
from zoo.interop.transformers_export import export_card, export_transformers
from zoo.tasks.translation_inputs import Source, checked_sources, encode_sources

DECODING_FILE = "zoo_decoding.json"
COMPUTE_TYPES = ("default", "float32", "bfloat16", "int8", "int8_float32")
CTRANSLATE2_USAGE = """# zoo translate --engine ctranslate2 --checkpoint FOLDER [--compute-type int8] < input.en > output.fr
# or, in Python (the source pieces of tokenizer.json, then <eos>):
import ctranslate2
from tokenizers import Tokenizer

tokenizer = Tokenizer.from_file("FOLDER/tokenizer.json")
translator = ctranslate2.Translator("FOLDER", compute_type="int8")
source = tokenizer.encode("A man is riding a bike.", add_special_tokens=False).tokens + ["<eos>"]
target = translator.translate_batch([source], beam_size=5)[0].hypotheses[0]
print(tokenizer.decode([tokenizer.token_to_id(t) for t in target]))"""


def require_ctranslate2():
    try:
        import ctranslate2
    except ImportError as error:
        raise ImportError("this needs the ctranslate2 package. Fix: pip install 'seq-zoo[export]'.") from error
    return ctranslate2


def export_ctranslate2(model, out: str | Path, quantization: str | None = None, force: bool = False) -> Path:
    """Write ``model`` as a CTranslate2 folder at ``out`` (new or empty unless ``force``), all at once;
    ``quantization`` (e.g. int8) stores the weights so."""
    ctranslate2 = require_ctranslate2()
    # atomic_folder refuses an existing --out on entering, before the conversion's work.
    with tempfile.TemporaryDirectory() as work, atomic_folder(out, force) as staging:
        hf_folder = export_transformers(model, Path(work) / "transformers")
        converter = ctranslate2.converters.TransformersConverter(str(hf_folder), copy_files=["tokenizer.json"])
        converted = Path(converter.convert(str(staging), quantization=quantization, force=True))
        config_path = converted / "config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        # Its Pegasus loader starts decoding from <pad>, Pegasus' convention; ours starts from <bos>.
        config["decoder_start_token"] = config["bos_token"] = "<bos>"
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        limits = {
            "max_source_tokens": model.max_source_tokens,
            "max_len_a": model.hparams.max_len_a,
            "max_len_b": model.hparams.max_len_b,
            "max_positions": model.hparams.max_positions,
        }
        (converted / DECODING_FILE).write_text(json.dumps(limits, indent=1), encoding="utf-8")
        (converted / "README.md").write_text(export_card(model, "ctranslate2", CTRANSLATE2_USAGE), encoding="utf-8")
    return Path(out)


class CTranslate2Translator:
    """A CTranslate2 folder written by ``export_ctranslate2``, translating like our models' ``translate_n_best``."""

    def __init__(self, folder: str | Path, compute_type: str = "default", threads: int | None = None):
        """``threads``: for one translation; by default as many as torch uses (``torch.get_num_threads()``)."""
        ctranslate2 = require_ctranslate2()
        folder = Path(folder)
        if not (folder / DECODING_FILE).is_file() or not (folder / "model.bin").is_file():
            raise CheckpointError(
                f"{folder} is not a CTranslate2 folder written by zoo (model.bin or {DECODING_FILE} is missing). "
                f"Fix: write one with `zoo export --format ctranslate2 --out FOLDER`."
            )
        if compute_type not in COMPUTE_TYPES:
            raise ValueError(f"compute type must be one of {', '.join(COMPUTE_TYPES)}, got {compute_type!r}")
        supported = ctranslate2.get_supported_compute_types("cpu")
        if compute_type != "default" and compute_type not in supported:
            raise ValueError(
                f"CTranslate2 has no {compute_type} kernels for this CPU. Fix: pass --compute-type one of "
                f"{', '.join(sorted(supported))}."
            )
        self.limits = json.loads((folder / DECODING_FILE).read_text(encoding="utf-8"))
        self.max_source_tokens = self.limits["max_source_tokens"]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.translator = ctranslate2.Translator(
            str(folder), device="cpu", compute_type=compute_type, intra_threads=threads or torch.get_num_threads()
        )

    def encode_sources(self, sentences: list[str]) -> list[Encoding]:
        """As our models' ``encode_sources`` (zoo/tasks/translation_inputs.py)."""
        return encode_sources(self.tokenizer, sentences)

    def translate_n_best(
        self,
        sources: list[Source],
        truncate: bool = False,
        strategy: str = "greedy",
        beam_size: int = 5,
        n_best: int = 1,
        length_penalty: float = 1.0,
        max_len_a: float | None = None,
        max_len_b: int | None = None,
    ) -> list[list[tuple[str, float]]]:
        checked = checked_sources(self.encode_sources(sources), self.max_source_tokens, truncate)
        pieces = [tokens + ["<eos>"] for _, tokens in checked]
        a = self.limits["max_len_a"] if max_len_a is None else max_len_a
        b = self.limits["max_len_b"] if max_len_b is None else max_len_b
        opts = DecodingOptions(max_len_a=a, max_len_b=b)  # the zoo's own rule (and max_len), for the same limits
        lengths = torch.tensor([len(p) for p in pieces])
        limits = length_limits(opts, len(pieces), 1, self.limits["max_positions"], lengths).tolist()
        beams = 1 if strategy == "greedy" else beam_size
        results = self.translator.translate_batch(
            pieces,
            beam_size=beams,
            num_hypotheses=n_best if beams > 1 else 1,
            length_penalty=length_penalty,
            max_decoding_length=max(limits),
            return_scores=True,
        )
        out = []
        for limit, result in zip(limits, results):
            hypotheses = []
            for tokens, score in zip(result.hypotheses, result.scores):
                ids = [self.tokenizer.token_to_id(t) for t in tokens[:limit]]
                hypotheses.append((self.tokenizer.decode(ids, skip_special_tokens=True), float(score)))
            out.append(hypotheses)
        return out

    def translate(self, sources: list[Source], **options) -> list[str]:
        return [n_best[0][0] for n_best in self.translate_n_best(sources, **options)]
