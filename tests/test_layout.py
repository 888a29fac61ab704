"""The layout holds what the README says: no import cycles, datamodules/ and callbacks/ independent of the
models, public names where users find them, and files written before the layout changed still load."""

import ast
import json
import subprocess
import sys

import zoo
from tests.conftest import REPO

PACKAGES = ("zoo", "datamodules", "callbacks")


def module_name(path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each module of the three packages -> the modules of the three packages it imports, at any depth of its code."""
    modules = {module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found |= {t for t in targets if t in modules}
        graph[name] = found - {name}
    return graph


def test_no_module_imports_itself_through_others():
    graph = imports()
    done, path = set(), []

    def visit(name):
        assert name not in path, f"import cycle: {' -> '.join(path[path.index(name) :] + [name])}"
        if name in done:
            return
        path.append(name)
        for other in graph[name]:
            # A package's __init__ re-exporting its own modules is no cycle.
            if not other.startswith(name + ".") and not name.startswith(other + "."):
                visit(other)
        path.pop()
        done.add(name)

    for name in graph:
        visit(name)


def test_datamodules_and_callbacks_use_no_model_code():
    for name, imported in imports().items():
        if name.startswith(("datamodules", "callbacks")):
            assert not {m for m in imported if m.startswith("zoo")}, (name, imported)


def test_hub_finds_model_classes_in_the_registry_not_through_the_zoo_package():
    for name, imported in imports().items():
        if name.startswith("zoo.hub"):
            assert "zoo" not in imported, f"{name} imports the zoo package (to look a model up by name?)"


def test_importing_callbacks_loads_no_model_and_changes_no_setting():
    code = (
        "import matplotlib, sys; before = matplotlib.get_backend(); import callbacks, datamodules; "
        "print(sorted(m for m in sys.modules if m.startswith(('zoo.models', 'zoo.tasks', 'zoo.hub', 'zoo.cli'))), "
        "matplotlib.get_backend() == before)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.stdout.strip() == "[] True", done.stderr[-2000:]


def test_public_names_and_files_written_before_the_layout_changed():
    for name in (
        "CharRNN",
        "Seq2Seq",
        "Transformer",
        "TransformerLM",
        "DecodingMixin",
        "load_pretrained",
        "load_model",
    ):
        assert getattr(zoo, name).__name__ == name
    # The shipped bundles were written when the models lived in zoo/char_rnn.py and zoo/transformer.py.
    bundles = REPO / "zoo" / "hub" / "pretrained_bundles"
    names = {
        json.loads((bundles / b / "config.json").read_text())["class_path"]
        for b in ("char-rnn-shakespeare", "transformer-multi30k-en-fr")
    }
    assert names == {"zoo.char_rnn.CharRNN", "zoo.transformer.Transformer"}
    assert type(zoo.load_pretrained("char-rnn-shakespeare")) is zoo.CharRNN
    assert type(zoo.load_pretrained("transformer-multi30k-en-fr")) is zoo.Transformer


def test_a_model_missing_part_of_a_contract_fails_when_built_and_says_what():
    import lightning as L
    import pytest
    import torch

    from zoo.tasks.language_model import LanguageModelTask
    from zoo.tasks.translation import TranslationTask

    class NoDecode(zoo.DecodingMixin, torch.nn.Module):
        def init_state(self, memory, src_pad_mask, batch_size):
            return torch.zeros(batch_size)

    class NoLoss(TranslationTask, zoo.DecodingMixin, L.LightningModule):
        init_state, decode = NoDecode.init_state, lambda self, tokens, state, attention=False: (tokens, state, None)

    class NoLogits(LanguageModelTask, zoo.DecodingMixin, L.LightningModule):
        init_state, decode = NoLoss.init_state, NoLoss.decode

    for cls, missing in ((NoDecode, "decode"), (NoLoss, "sequence_loss"), (NoLogits, "language_model_logits")):
        with pytest.raises(TypeError, match=f"abstract method.*{missing}"):
            cls()


def test_checkpoints_that_still_hold_special_ids_as_arguments_load(tmp_path, translator):
    """Files from before the special ids were read from the tokenizer name pad_id, bos_id and eos_id."""
    import torch

    from tests.conftest import save_checkpoint

    path = save_checkpoint(translator, tmp_path / "old.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"].update(pad_id=0, bos_id=1, eos_id=2, _class_path="zoo.transformer.Transformer")
    torch.save(checkpoint, path)
    sentences = ["a small test"]
    for loaded in (zoo.load_model(path), zoo.Transformer.load_from_checkpoint(path).eval()):
        assert loaded.translate(sentences) == translator.eval().translate(sentences)
