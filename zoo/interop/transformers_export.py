"""Export a zoo Transformer translator to Hugging Face transformers' Pegasus classes, weights and tokenizer.

Pegasus is the transformers architecture that matches ours layer for layer: pre-norm encoder and decoder
layers with a final layer norm each, ReLU feed-forward (an option), embeddings scaled by sqrt(d_model),
sinusoidal positions from 0, one embedding matrix shared by encoder, decoder and (when tied) the output.
One difference is a layout: our sinusoidal table interleaves its features (sin, cos, sin, cos, ...), Pegasus
puts all sines first, then all cosines. Permuting the model dimension of every weight that reads or writes
the residual stream (and of the layer norms, which do not mind the order of their features) turns one network
into the other exactly: Pegasus then computes the same numbers in a different order of features.

The folder loads offline in transformers with its own classes (AutoModelForSeq2SeqLM, AutoTokenizer;
transformers 4 also takes it in ``pipeline("translation", model=folder)``, a task 5 removed): config.json,
generation_config.json (greedy, our length limit), model.safetensors, tokenizer.json with its PreTrainedTokenizerFast settings (the source gets its <eos> as ours
does), and a model card. Decoding in transformers equals ours token for token where the two searches are the
same: greedy, and beam search without a length penalty (transformers divides by length ** alpha, we by GNMT's
((5 + length) / 6) ** alpha; tests/test_transformers_export.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, processors

from zoo.hub.atomic_writes import atomic_folder
from zoo.hub.checkpoints import CheckpointError
from zoo.hub.model_card import card_metadata, languages_of, limits_section, render

INSTALL_HINT = "Fix: pip install 'seq-zoo[export]' (transformers)."


def require_transformers():
    try:
        import transformers
    except ImportError as error:
        raise ImportError(
            f"exporting to the transformers format needs the transformers package. {INSTALL_HINT}"
        ) from error
    return transformers


def check_exportable(model) -> None:
    """The zoo Transformers Pegasus can hold: pre-norm, sinusoidal positions, one shared embedding matrix."""
    from zoo.models.transformer import Transformer

    if not isinstance(model, Transformer):
        raise CheckpointError(
            f"only zoo.Transformer translators export to the transformers format, not {type(model).__name__}: "
            f"the char-RNN and the RNN seq2seq have no transformers architecture to map to."
        )
    hp = model.hparams
    problems = []
    if not hp.norm_first:
        problems.append("norm_first must be true (Pegasus is pre-norm)")
    if hp.positional != "sinusoidal":
        problems.append(f"positional must be 'sinusoidal', not {hp.positional!r}")
    if model.src_embedding is not model.tgt_embedding:
        problems.append("the source and target embeddings must be one matrix (a joint vocabulary with tie_embeddings)")
    if problems:
        raise CheckpointError(f"this Transformer has no Pegasus equivalent: {'; '.join(problems)}.")


def feature_order(d_model: int) -> torch.Tensor:
    """Pegasus feature j is our feature order[j]: our even features (sines) first, then the odd ones (cosines)."""
    return torch.cat([torch.arange(0, d_model, 2), torch.arange(1, d_model, 2)])


def pegasus_state_dict(model) -> dict[str, torch.Tensor]:
    """Our weights under Pegasus' names, with the model dimension permuted (see the module docstring)."""
    order = feature_order(model.hparams.d_model)

    def reads(w):  # a Linear reading the residual stream: permute its input features
        return w[:, order]

    def writes(w):  # a Linear weight or bias writing to the residual stream: permute its outputs
        return w[order]

    def attention(prefix: str, ours) -> dict:
        k, v = ours.key_value.weight.chunk(2, dim=0)
        k_bias, v_bias = ours.key_value.bias.chunk(2, dim=0)
        return {
            f"{prefix}.q_proj.weight": reads(ours.query.weight),
            f"{prefix}.q_proj.bias": ours.query.bias,
            f"{prefix}.k_proj.weight": reads(k),
            f"{prefix}.k_proj.bias": k_bias,
            f"{prefix}.v_proj.weight": reads(v),
            f"{prefix}.v_proj.bias": v_bias,
            f"{prefix}.out_proj.weight": writes(ours.out.weight),
            f"{prefix}.out_proj.bias": writes(ours.out.bias),
        }

    def norm(prefix: str, ours) -> dict:
        return {f"{prefix}.weight": writes(ours.weight), f"{prefix}.bias": writes(ours.bias)}

    def feed_forward(prefix: str, ours) -> dict:
        first, _, second = ours
        return {
            f"{prefix}.fc1.weight": reads(first.weight),
            f"{prefix}.fc1.bias": first.bias,
            f"{prefix}.fc2.weight": writes(second.weight),
            f"{prefix}.fc2.bias": writes(second.bias),
        }

    table = model.positions.table
    state = {"model.shared.weight": reads(model.tgt_embedding.weight)}
    for side, stack in (("encoder", model.encoder), ("decoder", model.decoder)):
        state[f"model.{side}.embed_positions.weight"] = reads(table)
        state.update(norm(f"model.{side}.layer_norm", stack.norm))
        for i, layer in enumerate(stack.layers):
            prefix = f"model.{side}.layers.{i}"
            if side == "encoder":
                state.update(attention(f"{prefix}.self_attn", layer.attention))
            else:
                state.update(attention(f"{prefix}.self_attn", layer.self_attention))
                state.update(attention(f"{prefix}.encoder_attn", layer.cross_attention))
                state.update(norm(f"{prefix}.encoder_attn_layer_norm", layer.cross_attention_norm))
            state.update(norm(f"{prefix}.self_attn_layer_norm", layer.self_attention_norm))
            state.update(norm(f"{prefix}.final_layer_norm", layer.feed_forward_norm))
            state.update(feed_forward(prefix, layer.feed_forward))
    state["lm_head.weight"] = reads(model.output.weight)
    return {name: w.detach().float().contiguous() for name, w in state.items()}


def pegasus_config(model):
    transformers = require_transformers()
    hp, ids = model.hparams, model.special_ids
    return transformers.PegasusConfig(
        vocab_size=hp.tgt_vocab_size,
        d_model=hp.d_model,
        encoder_layers=hp.encoder_layers,
        decoder_layers=hp.decoder_layers,
        encoder_attention_heads=hp.heads,
        decoder_attention_heads=hp.heads,
        encoder_ffn_dim=hp.ffn_dim,
        decoder_ffn_dim=hp.ffn_dim,
        activation_function="relu",
        dropout=hp.dropout,
        attention_dropout=0.0,
        activation_dropout=0.0,
        max_position_embeddings=hp.max_positions,
        scale_embedding=True,
        pad_token_id=ids.pad,
        bos_token_id=ids.bos,
        eos_token_id=ids.eos,
        decoder_start_token_id=ids.bos,  # our decoder starts from <bos>; Pegasus' own from <pad>
        forced_eos_token_id=None,
        tie_word_embeddings=bool(hp.tie_embeddings),
        architectures=["PegasusForConditionalGeneration"],
        # Read by CTranslate2's converter (Google's own Pegasus configs carry them too); transformers ignores them.
        normalize_before=True,
        normalize_embedding=False,
    )


def fast_tokenizer(model):
    """Our (joint) tokenizer as a PreTrainedTokenizerFast that appends <eos> to what it encodes, as collation
    does for our sources (datamodules/collate.py)."""
    transformers = require_transformers()
    tokenizer = Tokenizer.from_str(model.hparams.src_tokenizer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A <eos>", pair="$A <eos> $B <eos>", special_tokens=[("<eos>", model.special_ids.eos)]
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        model_max_length=model.max_source_tokens,
        padding_side="right",
    )


def to_pegasus(model):
    """A PegasusForConditionalGeneration computing what ``model`` computes (eval mode, fp32, CPU)."""
    transformers = require_transformers()
    check_exportable(model)
    pegasus = transformers.PegasusForConditionalGeneration(pegasus_config(model))
    state = pegasus_state_dict(model)
    missing, unexpected = pegasus.load_state_dict(state, strict=False)
    # final_logits_bias is a zero buffer we have no counterpart for; tied copies of shared.weight are one tensor.
    left = [name for name in missing if name != "final_logits_bias" and not name.endswith("embed_tokens.weight")]
    if left or unexpected:
        raise RuntimeError(f"Pegasus mapping is incomplete: missing {left}, unexpected {unexpected}")
    pegasus.generation_config = generation_config(model)
    return pegasus.eval()


def generation_config(model):
    transformers = require_transformers()
    ids = model.special_ids
    return transformers.GenerationConfig(
        decoder_start_token_id=ids.bos,
        bos_token_id=ids.bos,
        eos_token_id=ids.eos,
        pad_token_id=ids.pad,
        forced_eos_token_id=None,
        num_beams=1,
        do_sample=False,
        max_length=model.hparams.max_positions,  # the longest target our positions allow
    )


def export_card(model, library_name: str, usage: str) -> str:
    """The model card of an exported folder: Hub metadata for ``library_name``, how to use it, and its limits."""
    data = getattr(model, "training_data", None)  # set when loaded from a checkpoint or bundle (zoo/hub)
    hp = model.hparams
    languages = languages_of(data)
    title = f"{' -> '.join(languages)} " if languages else ""
    body = (
        f"# {title}Transformer translator (seq-zoo, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
        f"parameters)\n\nd_model {hp.d_model}, {hp.encoder_layers}+{hp.decoder_layers} layers, {hp.heads} heads, "
        f"pre-norm, sinusoidal positions; trained with seq-zoo and exported by `zoo export`. Its decoding equals "
        f"seq-zoo's token for token in greedy search and in beam search without a length penalty (seq-zoo's "
        f"penalty is GNMT's ((5 + length) / 6) ** alpha, this library's length ** alpha).\n\n"
        f"## Usage\n\n```python\n{usage}\n```\n\n{limits_section(data)}"
    )
    return render(card_metadata(True, data, library_name), body)


TRANSFORMERS_USAGE = """from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("FOLDER")
model = AutoModelForSeq2SeqLM.from_pretrained("FOLDER")
batch = tokenizer(["A man is riding a bike."], return_tensors="pt", padding=True)
print(tokenizer.batch_decode(model.generate(**batch, num_beams=5), skip_special_tokens=True))"""


def export_transformers(model, out: str | Path, force: bool = False) -> Path:
    """Write ``model`` as a transformers folder at ``out`` (new or empty unless ``force``), all at once."""
    pegasus = to_pegasus(model)
    with atomic_folder(out, force) as staging:
        pegasus.save_pretrained(staging)
        fast_tokenizer(model).save_pretrained(staging)
        # transformers 5 names its class TokenizersBackend, which 4.x cannot load; both know this name.
        settings = json.loads((staging / "tokenizer_config.json").read_text(encoding="utf-8"))
        settings["tokenizer_class"] = "PreTrainedTokenizerFast"
        (staging / "tokenizer_config.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
        (staging / "README.md").write_text(export_card(model, "transformers", TRANSFORMERS_USAGE), encoding="utf-8")
    return Path(out)
