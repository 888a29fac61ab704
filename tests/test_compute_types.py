"""bf16 where the hardware has it: detection, `zoo fit`'s default precision and its record, bf16 decoding copies.

The suite runs with ZOO_NATIVE_BF16=0 (tests/conftest.py), so these tests set the variable when they need bf16
to be the default; the bf16 kernels themselves run on every CPU (emulated where it has no native bf16)."""

import math

import pytest
import torch

import zoo
from zoo.cli import ZooCLI
from zoo.hub.bundles import export_bundle
from zoo.modules import compute_types
from zoo.modules.compute_types import decoding_copy, native_bf16, resolved_compute_type

SENTENCES = [
    "A man in a blue shirt is riding a bike.",
    "Two dogs are playing in the snow.",
    "A woman is reading a book in the park.",
    "Children are playing soccer on a field.",
    "A group of people stand in front of a building.",
    "A little girl is eating an ice cream.",
    "A man is playing the guitar on stage.",
    "An old man sits on a bench.",
]


def test_native_bf16_follows_the_cpu_flags_unless_overridden(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n\n")
    assert "avx512_bf16" in compute_types.cpu_flags(cpuinfo)
    assert compute_types.cpu_flags(tmp_path / "missing") == frozenset()  # not Linux: bf16 not assumed
    monkeypatch.delenv("ZOO_NATIVE_BF16")
    for flags, native in ({"avx2", "fma"}, False), ({"avx512f", "avx512_bf16"}, True), ({"amx_bf16"}, True):
        monkeypatch.setattr(compute_types, "cpu_flags", lambda flags=frozenset(flags): flags)
        assert native_bf16() is native
        assert resolved_compute_type("default") == ("bfloat16" if native else "float32")
        monkeypatch.setenv("ZOO_NATIVE_BF16", "0")
        assert not native_bf16() and resolved_compute_type("default") == "float32"
        monkeypatch.setenv("ZOO_NATIVE_BF16", "1")
        assert native_bf16() and resolved_compute_type("default") == "bfloat16"
        monkeypatch.delenv("ZOO_NATIVE_BF16")
    monkeypatch.setenv("ZOO_NATIVE_BF16", "yes")
    with pytest.raises(ValueError, match="ZOO_NATIVE_BF16 must be 0 or 1"):
        native_bf16()
    with pytest.raises(ValueError, match="compute type must be one of default, float32, bfloat16, int8"):
        resolved_compute_type("float16")


def char_run(corpus, *extra: str) -> ZooCLI:
    args = ["--model", "zoo.TransformerLM", "--data", "datamodules.CharDataModule", "--data.source", str(corpus)]
    args += ["--data.mode", "stateless", "--data.seq_len", "32", "--model.init_args.d_model", "16"]
    args += ["--model.init_args.heads", "2", "--model.init_args.layers", "1", "--model.init_args.ffn_dim", "32"]
    args += ["--trainer.logger", "false", "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1"]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    return ZooCLI([*args, *extra], run=False)


@pytest.mark.parametrize("native", ["0", "1"])
def test_zoo_fit_trains_in_bf16_mixed_by_default_only_with_native_bf16(native, small_corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_NATIVE_BF16", native)
    assert char_run(small_corpus).trainer.precision == ("bf16-mixed" if native == "1" else "32-true")
    for chosen in ("32-true", "bf16-mixed"):  # an explicit choice wins on every CPU
        assert char_run(small_corpus, "--trainer.precision", chosen).trainer.precision == chosen


def test_the_checkpoint_and_the_model_card_record_the_training_precision(small_corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_NATIVE_BF16", "1")
    cli = char_run(small_corpus, "--trainer.default_root_dir", str(tmp_path))
    cli.trainer.fit(cli.model, cli.datamodule)
    (checkpoint,) = tmp_path.glob("**/*.ckpt")
    assert torch.load(checkpoint, weights_only=True)["precision"] == "bf16-mixed"
    bundle = export_bundle(checkpoint, tmp_path / "bundle")
    assert "| training precision | bf16-mixed |" in (bundle / "README.md").read_text()


@pytest.fixture(scope="module", params=["transformer-multi30k-en-fr", "seq2seq-bahdanau-multi30k-en-fr"])
def translator(request):
    return zoo.load_pretrained(request.param)


def test_a_bf16_copy_translates_as_float32_does_and_leaves_the_model_as_it_was(translator):
    """bf16 weights (an RNN's layers excepted: no CPU kernel), fp32 scores; most translations identical (the
    benchmark, benchmarks/translation_engines.py, measures BLEU on the whole test set)."""
    bf16 = decoding_copy(translator, "bfloat16")
    assert all(p.dtype == torch.float32 for p in translator.parameters())
    for name, p in bf16.named_parameters():
        rnn = any(name.startswith(f"{n}.") for n, m in bf16.named_modules() if isinstance(m, torch.nn.RNNBase))
        assert p.dtype == (torch.float32 if rnn else torch.bfloat16), name
    same = sum(a == b for a, b in zip(translator.translate(SENTENCES), bf16.translate(SENTENCES)))
    assert same >= 6, same
    beams = {"strategy": "beam", "beam_size": 3, "n_best": 3}
    for fp32_hyps, bf16_hyps in zip(
        translator.translate_n_best(SENTENCES[:2], **beams), bf16.translate_n_best(SENTENCES[:2], **beams)
    ):
        assert len(bf16_hyps) == 3 and all(math.isfinite(score) for _, score in bf16_hyps)
        assert abs(fp32_hyps[0][1] - bf16_hyps[0][1]) < 0.1  # the best score, summed in fp32


def test_a_bf16_copy_of_the_char_rnn_scores_text_as_float32_does():
    """Its LSTM stays fp32 (no bf16 kernel on the CPU), its embedding and output layer turn bf16."""
    from datamodules.shakespeare_plays import shakespeare_text

    model = zoo.load_pretrained("char-rnn-shakespeare")
    bf16 = decoding_copy(model, "bfloat16")
    assert bf16.rnn.weight_ih_l0.dtype == torch.float32 and bf16.output.weight.dtype == torch.bfloat16
    tokens = model.vocab.encode(shakespeare_text()[1000:1400])[None]  # (1, T)
    with torch.no_grad():
        fp32_log_probs, _, _ = model.decode(tokens[:, :-1], model.init_state(None, None, 1))
        bf16_log_probs, _, _ = bf16.decode(tokens[:, :-1], bf16.init_state(None, None, 1))
    assert bf16_log_probs.dtype == torch.float32
    fp32_nll = -fp32_log_probs[0].gather(1, tokens[0, 1:, None]).mean()
    bf16_nll = -bf16_log_probs[0].gather(1, tokens[0, 1:, None]).mean()
    assert abs(fp32_nll - bf16_nll) < 0.02, (fp32_nll, bf16_nll)  # nats/char
    assert (fp32_log_probs.argmax(-1) == bf16_log_probs.argmax(-1)).float().mean() >= 0.9
