"""Bundles, load_pretrained, the registry and its downloads, safe loading, and the inference commands."""

import json
import os
import pickle
import stat
import subprocess

import pytest
import torch

from tests.conftest import save_checkpoint, zoo_here
from zoo import CharRNN, CheckpointError, load_pretrained
from zoo.hub.bundles import export_bundle, sha256_of, write_checksums

VOCAB = "\nabcdefgh ."


@pytest.fixture
def char_rnn():
    torch.manual_seed(0)
    return CharRNN(len(VOCAB), VOCAB, hidden_size=16, num_layers=2).eval()


def test_char_rnn_bundle_loads_to_identical_outputs(tmp_path, char_rnn):
    folder = export_bundle(save_checkpoint(char_rnn, tmp_path / "m.ckpt"), tmp_path / "bundle")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "SHA256SUMS", "config.json", "model.safetensors"]
    loaded = load_pretrained(folder)
    assert not loaded.training
    tokens = torch.randint(len(VOCAB), (3, 12))
    assert torch.equal(loaded(tokens)[0], char_rnn(tokens)[0])
    assert loaded.generate_text("ab", 30, strategy="greedy") == char_rnn.generate_text("ab", 30, strategy="greedy")
    card = (folder / "README.md").read_text()
    assert "CharRNN" in card and "global_step | 99" in card


def test_transformer_bundle_keeps_tokenizer_and_tied_weights(tmp_path, translator):
    folder = export_bundle(save_checkpoint(translator, tmp_path / "t.ckpt"), tmp_path / "bundle")
    assert (folder / "tokenizer.json").is_file()  # joint vocabulary: one tokenizer file
    json.loads((folder / "tokenizer.json").read_text())  # readable by any `tokenizers` user
    loaded = load_pretrained(str(folder))
    assert loaded.output.weight is loaded.tgt_embedding.weight
    sentences = ["a man runs", "the red ball in park"]
    options = dict(strategy="beam", beam_size=3, n_best=2)
    assert loaded.translate_n_best(sentences, **options) == translator.translate_n_best(sentences, **options)


def test_float16_bundle_is_half_the_size_and_loads_as_float32(tmp_path, char_rnn):
    checkpoint = save_checkpoint(char_rnn, tmp_path / "m.ckpt")
    full, half = export_bundle(checkpoint, tmp_path / "32"), export_bundle(checkpoint, tmp_path / "16", dtype="float16")
    assert (half / "model.safetensors").stat().st_size < 0.6 * (full / "model.safetensors").stat().st_size
    loaded = load_pretrained(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    tokens = torch.randint(len(VOCAB), (2, 8))
    torch.testing.assert_close(loaded(tokens)[0], char_rnn(tokens)[0], atol=2e-2, rtol=0)


def test_export_never_overwrites_a_folder_unless_forced_and_then_replaces_it_whole(
    tmp_path, char_rnn, translator, capsys
):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    checkpoint = save_checkpoint(char_rnn, tmp_path / "m.ckpt")
    with pytest.raises(CheckpointError, match="already exists and is not an empty folder.*--force"):
        export_bundle(checkpoint, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    export_bundle(save_checkpoint(translator, tmp_path / "t.ckpt"), out, force=True)
    assert "tokenizer.json" in {p.name for p in out.iterdir()} and not (out / "notes.txt").exists()
    code, message = zoo_here("export", "--checkpoint", str(checkpoint), "--out", str(out))  # a char-RNN over it
    assert code == 1 and "--force" in message
    assert zoo_here("export", "--checkpoint", str(checkpoint), "--out", str(out), "--force") == (0, "")
    # Replaced whole: the translator's tokenizer did not stay behind in the char-RNN's bundle.
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "SHA256SUMS", "config.json", "model.safetensors"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial or replaced folders left
    assert isinstance(load_pretrained(out), CharRNN)


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "tokenizer.json"])
def test_a_bundle_with_one_flipped_byte_is_refused(tmp_path, translator, name):
    folder = export_bundle(save_checkpoint(translator, tmp_path / "t.ckpt"), tmp_path / "bundle")
    load_pretrained(folder)
    data = bytearray((folder / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / name).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{name} does not match its sha256 in SHA256SUMS"):
        load_pretrained(folder)


def test_a_bundle_without_checksums_is_refused_and_the_fix_given_works(tmp_path, translator):
    folder = export_bundle(save_checkpoint(translator, tmp_path / "t.ckpt"), tmp_path / "bundle")
    (folder / "SHA256SUMS").unlink()
    with pytest.raises(CheckpointError, match="has no SHA256SUMS, so a damaged or altered file") as error:
        load_pretrained(folder)
    command = str(error.value).split("list them: ")[1]
    assert subprocess.run(command, shell=True).returncode == 0  # what the user who trusts the files runs
    assert load_pretrained(folder).translate(["a man runs"]) == translator.translate(["a man runs"])


def test_exports_get_the_users_file_modes(tmp_path, char_rnn):
    old = os.umask(0o022)
    try:
        folder = export_bundle(save_checkpoint(char_rnn, tmp_path / "m.ckpt"), tmp_path / "shared")
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {
        name: 0o644 for name in ("README.md", "SHA256SUMS", "config.json", "model.safetensors")
    }


def test_an_output_folder_that_cannot_be_written_is_named_not_our_staging_path(tmp_path, char_rnn, capsys):
    checkpoint = save_checkpoint(char_rnn, tmp_path / "m.ckpt")
    (tmp_path / "notes").write_text("a file, where a folder was meant")
    code, message = zoo_here("export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "notes" / "bundle"))
    assert (
        code == 1 and f"cannot write {tmp_path / 'notes' / 'bundle'}" in message and "Fix: choose an --out" in message
    )
    assert ".partial" not in message and ".replaced" not in message
    if os.geteuid() == 0:
        return  # root writes into read-only folders: the rest cannot be shown here
    locked = tmp_path / "locked"
    export_bundle(checkpoint, locked / "bundle")
    locked.chmod(0o555)
    try:
        code, message = zoo_here("export", "--checkpoint", str(checkpoint), "--out", str(locked / "bundle"), "--force")
    finally:
        locked.chmod(0o755)
    assert code == 1 and f"cannot write {locked / 'bundle'}" in message and ".replaced" not in message
    assert isinstance(load_pretrained(locked / "bundle"), CharRNN)  # the old bundle is still there, whole


def test_the_shipped_bundles_carry_their_checksums():
    from zoo.hub.pretrained import PACKAGE_DIR, registry

    for name, entry in registry().items():
        listed = (PACKAGE_DIR / name / "SHA256SUMS").read_text().split()
        assert dict(zip(listed[1::2], listed[0::2])) == {k: v for k, v in entry["files"].items() if k != "SHA256SUMS"}


def registry_entry(folder, url):
    files = {p.name: sha256_of(p) for p in folder.iterdir() if p.name != "README.md"}
    return {"url": url, "class_path": "zoo.models.char_rnn.CharRNN", "description": "test", "files": files}


def test_registered_bundle_downloads_once_into_the_cache(tmp_path, char_rnn):
    served = export_bundle(save_checkpoint(char_rnn, tmp_path / "m.ckpt"), tmp_path / "served")
    known = {"tiny": registry_entry(served, served.as_uri())}
    cache = tmp_path / "cache" / "pretrained" / "tiny"  # conftest points ZOO_CACHE_DIR at tmp_path / "cache"
    assert not cache.exists()
    first = load_pretrained("tiny", known)
    assert sorted(p.name for p in cache.iterdir()) == ["SHA256SUMS", "config.json", "model.safetensors"]
    (served / "model.safetensors").unlink()  # the "server" is gone: the second call must use the cache
    second = load_pretrained("tiny", known)
    assert torch.equal(first.output.weight, second.output.weight)


def test_hash_mismatch_raises_and_leaves_no_file(tmp_path, char_rnn):
    served = export_bundle(save_checkpoint(char_rnn, tmp_path / "m.ckpt"), tmp_path / "served")
    entry = registry_entry(served, served.as_uri())
    entry["files"]["model.safetensors"] = "0" * 64
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        load_pretrained("tiny", {"tiny": entry})
    assert not (tmp_path / "cache" / "pretrained" / "tiny" / "model.safetensors").exists()
    assert not [p for p in (tmp_path / "cache" / "pretrained" / "tiny").iterdir() if p.name.startswith(".")]


def test_a_checkpoint_url_loads_through_the_cache(tmp_path, char_rnn):
    checkpoint = save_checkpoint(char_rnn, tmp_path / "served.ckpt")
    model = load_pretrained(checkpoint.as_uri())
    assert torch.equal(model.output.weight, char_rnn.output.weight)


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_runs_code_on_unpickling_is_refused(tmp_path, char_rnn):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.ckpt"
    checkpoint = {
        "state_dict": char_rnn.state_dict(),
        "hyper_parameters": {"_class_path": "zoo.CharRNN"},
        "x": RunsCode(marker),
    }
    with open(path, "wb") as file:
        pickle.dump(checkpoint, file, protocol=2)  # torch.load reads plain pickles too
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_pretrained(path)
    assert not marker.exists()
    assert os.system(f"touch {marker}") == 0 and marker.exists()  # the payload itself would have worked


def test_bad_bundles_and_names_get_clear_errors(tmp_path, char_rnn):
    """Bundles edited by hand (their SHA256SUMS written again, so the checks below them are reached)."""
    folder = export_bundle(save_checkpoint(char_rnn, tmp_path / "m.ckpt"), tmp_path / "bundle")
    with pytest.raises(
        CheckpointError,
        match="Known names: char-rnn-shakespeare, seq2seq-bahdanau-multi30k-en-fr, .*transformer-multi30k-en-fr",
    ):
        load_pretrained("no-such-model")
    config = json.loads((folder / "config.json").read_text())

    def edited(name: str, data: bytes):
        (folder / name).write_bytes(data)
        write_checksums(folder)
        return folder

    with pytest.raises(CheckpointError, match="does not exist in this version"):
        load_pretrained(edited("config.json", json.dumps({**config, "class_path": "zoo.NoSuchModel"}).encode()))
    with pytest.raises(CheckpointError, match="not a zoo model"):
        load_pretrained(edited("config.json", json.dumps({**config, "class_path": "os.system"}).encode()))
    edited("config.json", json.dumps(config).encode())
    weights = (folder / "model.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match="cannot load"):
        load_pretrained(edited("model.safetensors", weights[: len(weights) // 2]))


# The inference commands below run in this process (zoo_here): each subprocess start-up costs seconds, and
# test_cli and test_transformer already run `zoo` as a separate process end to end.


def test_zoo_translate_keeps_line_alignment_and_writes_n_best(tmp_path, translator, capsys):
    checkpoint = str(save_checkpoint(translator, tmp_path / "t.ckpt"))
    assert zoo_here(
        "translate", "--checkpoint", checkpoint, "--beam-size", "3", stdin="a man runs\n\nthe red ball\n"
    ) == (0, "")
    lines = capsys.readouterr().out.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""  # three outputs, the empty one kept
    assert [lines[0], lines[2]] == translator.translate(["a man runs", "the red ball"], strategy="beam", beam_size=3)
    options = ("--beam-size", "3", "--n-best", "2")
    assert zoo_here("translate", "--checkpoint", checkpoint, *options, stdin="a man runs\nthe dog\n") == (0, "")
    rows = [line.split(" ||| ") for line in capsys.readouterr().out.splitlines()]
    expected = translator.translate_n_best(["a man runs", "the dog"], strategy="beam", beam_size=3, n_best=2)
    assert rows == [[str(i), text, f"{score:.4f}"] for i, n_best in enumerate(expected) for text, score in n_best]
    assert all(n_best[0][1] >= n_best[1][1] for n_best in expected)


def test_inference_commands_refuse_the_wrong_kind_of_model(tmp_path, char_rnn, translator, capsys):
    code, message = zoo_here(
        "translate", "--checkpoint", str(save_checkpoint(char_rnn, tmp_path / "c.ckpt")), stdin="hello\n"
    )
    assert code == 1 and "CharRNN, which does not translate" in message
    code, message = zoo_here("generate", "--checkpoint", str(save_checkpoint(translator, tmp_path / "t.ckpt")))
    assert code == 1 and "Transformer, which does not continue text" in message
    with pytest.raises(CheckpointError, match="holds a zoo.Transformer, not a CharRNN"):
        CharRNN.load_from_checkpoint(tmp_path / "t.ckpt")


def test_the_shipped_char_rnn_generates_shakespeare_offline(capsys):
    options = ("--prompt", "ROMEO:", "--length", "300", "--seed", "1", "--temperature", "0.7")
    assert zoo_here("generate", "--pretrained", "char-rnn-shakespeare", *options) == (0, "")
    text = capsys.readouterr().out
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 300 + 1
    words = [w.strip(".,;:!?'") for w in text.split()]
    common = {"the", "and", "to", "of", "i", "my", "you", "that", "a", "is", "in", "not", "me", "with", "it", "be"}
    assert sum(w.lower() in common for w in words) >= 0.15 * len(words)  # English-like, not character soup


def test_the_shipped_translator_translates_offline(capsys):
    sentences = "A man is riding a bike.\n\nTwo dogs are playing in the snow.\n"
    assert zoo_here("translate", "--pretrained", "transformer-multi30k-en-fr", stdin=sentences) == (0, "")
    lines = capsys.readouterr().out.split("\n")
    assert lines[1] == "" and len(lines) == 4  # one line per input line, the empty one kept
    assert {"homme", "vélo"} <= set(lines[0].lower().replace(".", "").split())
    assert {"chiens", "neige"} <= set(lines[2].lower().replace(".", "").split())


def test_loading_a_bundle_hashes_each_of_its_files_once(monkeypatch):
    import zoo.hub.bundles as bundles

    hashed = []
    real = bundles.sha256_of
    monkeypatch.setattr(bundles, "sha256_of", lambda path: hashed.append(path.name) or real(path))
    load_pretrained("transformer-multi30k-en-fr")
    assert sorted(hashed) == ["SHA256SUMS", "config.json", "model.safetensors", "tokenizer.json"]


def test_load_from_checkpoint_keeps_lightnings_signature_and_refuses_what_it_cannot_honour(tmp_path, char_rnn):
    import inspect

    import lightning as L

    ours = inspect.signature(CharRNN.load_from_checkpoint).parameters
    theirs = inspect.signature(L.LightningModule.load_from_checkpoint).parameters  # (a descriptor: cls shows)
    assert list(ours) == [name for name in theirs if name != "cls"]
    path = save_checkpoint(char_rnn, tmp_path / "m.ckpt")
    loaded = CharRNN.load_from_checkpoint(path, map_location="cpu", strict=True, weights_only=True)
    assert torch.equal(loaded.output.weight, char_rnn.output.weight)
    with pytest.raises(CheckpointError, match="strict=False and weights_only=False are not supported"):
        CharRNN.load_from_checkpoint(path, strict=False)


def test_zoo_list_shows_every_registered_model_with_its_size(capsys):
    from zoo import list_pretrained
    from zoo.hub.pretrained import PACKAGE_DIR, registry

    rows = {row["name"]: row for row in list_pretrained()}
    assert set(rows) == set(registry())
    for name, row in rows.items():
        on_disk = sum(p.stat().st_size for p in (PACKAGE_DIR / name).iterdir() if p.name in registry()[name]["files"])
        assert row["size_mb"] == round(on_disk / 1e6, 1) and row["family"] and row["data"] and row["metric"]
    assert zoo_here("list") == (0, "")
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["name", "family", "data", "metric", "size"]
    for name, row in rows.items():
        (line,) = [line for line in printed if line.startswith(name + " ")]
        assert row["metric"] in line and f"{row['size_mb']} MB" in line
