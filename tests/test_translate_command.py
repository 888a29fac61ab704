"""`zoo translate` on awkward input: exactly one output line per input line, whatever a line holds; a bad
line is named (file and line number) and costs no other line."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo.cli import main
from zoo.cli.text_lines import LINE_BREAKS, read_lines
from zoo.cli.translate import translate_chunks

GREEDY = {"strategy": "greedy", "n_best": 1, "max_len": 6}
# Any character but the line end itself (and lone surrogates, which no UTF-8 text holds): U+2028, U+0085,
# form feeds, vertical tabs and other characters str.splitlines() breaks at are all inside lines here.
LINE = st.text(st.characters(blacklist_characters="\n\r\ufeff", blacklist_categories=("Cs",)), max_size=25)


def translate_file(path, *options, capsys):
    """`zoo translate --checkpoint CKPT --input PATH ...` in this process: (exit code, stdout, stderr)."""
    try:
        main(["translate", *options, "--input", str(path)])
        code = 0
    except SystemExit as done:
        code = done.code
    out, err = capsys.readouterr()
    if isinstance(code, str):  # sys.exit(message): a process would print it to stderr and exit 1
        code, err = 1, err + code + "\n"
    return code, out, err


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, max_size=8), crlf=st.booleans(), final_newline=st.booleans())
def test_any_unicode_lines_in_give_the_same_lines_out(translator, tmp_path, lines, crlf, final_newline):
    end = "\r\n" if crlf else "\n"
    text = "".join(line + end for line in lines) if final_newline else end.join(lines)
    path = tmp_path / "input.txt"
    path.write_bytes(text.encode("utf-8"))
    # Without a final newline, a last empty line is no line at all (an empty file holds none).
    expected = lines[:-1] if lines and not final_newline and lines[-1] == "" else lines
    assert read_lines(path) == expected
    outputs = [line for chunk in translate_chunks(translator, read_lines(path), 3, GREEDY) for line in chunk]
    assert len(outputs) == len(expected)
    for line, output in zip(expected, outputs):
        assert not LINE_BREAKS.search(output)  # each output is exactly one line
        if not translator.encode_sources([line])[0].ids:
            assert output == ""  # a line with nothing to translate (empty, or only spaces) stays empty
    assert all(output == "" for line, output in zip(expected, outputs) if line == "")


def test_the_command_keeps_lines_that_hold_unicode_line_separators(translator_checkpoint, tmp_path, capsys):
    lines = ["a man\u2028runs", "", "the dog\x85jumps", "red\x0cball\x0bpark", "\u2029", "a child\r"]
    path = tmp_path / "input.en"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    code, out, err = translate_file(path, "--checkpoint", str(translator_checkpoint), "--beam-size", "1", capsys=capsys)
    assert code == 0, err
    assert out.endswith("\n") and len(out.split("\n")) == len(lines) + 1, out
    assert out.split("\n")[1] == "" and out.split("\n")[4] == ""


def test_invalid_utf8_names_the_file_and_line_after_writing_the_lines_before_it(
    translator, translator_checkpoint, tmp_path, capsys
):
    path = tmp_path / "latin1.en"
    path.write_bytes("a man runs\nthe caf\u00e9 is red\n".encode("latin-1"))
    code, out, err = translate_file(path, "--checkpoint", str(translator_checkpoint), capsys=capsys)
    assert code == 1 and out == translator.translate(["a man runs"], strategy="beam", beam_size=5)[0] + "\n"
    assert f"{path}, line 2: byte 0xe9 at column 8 is not UTF-8" in err and "iconv" in err
    assert "input lines 1-1 are written" in err and "--skip-lines 1" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_line_too_long_for_the_model_is_truncated_skipped_or_refused(
    translator, translator_checkpoint, tmp_path, capsys
):
    room = translator.max_source_tokens - 1
    long = " ".join(["dog"] * (room + 50))
    n = len(translator.encode_sources([long])[0].ids)
    assert n > room
    path = tmp_path / "input.en"
    path.write_text(f"a man runs\n{long}\nthe red ball\n", encoding="utf-8")
    options = ["--checkpoint", str(translator_checkpoint), "--beam-size", "1"]
    short = translator.translate(["a man runs", "the red ball"])

    code, out, err = translate_file(path, *options, capsys=capsys)  # default: truncate
    assert code == 0, err
    assert out.split("\n") == [short[0], translator.translate([long], truncate=True)[0], short[1], ""]
    assert f"{path}, line 2: {n} tokens, more than the {room} this model reads; translated its first {room}" in err

    code, out, err = translate_file(path, *options, "--too-long", "skip", capsys=capsys)
    assert code == 0 and out.split("\n") == [short[0], "", short[1], ""]
    assert "line 2" in err and "skipped" in err

    code, out, err = translate_file(path, *options, "--too-long", "error", capsys=capsys)
    assert code == 1 and out == short[0] + "\n"  # the lines before it are written
    assert f"{path}, line 2:" in err and "--too-long truncate" in err and "--skip-lines 1" in err

    with pytest.raises(ValueError, match=f"source sentence 1 has {n} tokens.*truncate=True"):
        translator.translate(["a man runs", long])


def test_length_limits_mean_what_they_say(translator):
    src = "a man runs with the red ball in the park"
    n = len(translator.encode_sources([src])[0].ids) + 1  # with <eos>
    batch = translator.source_batch([src])

    def lengths(**options):
        (hypotheses,) = translator.generate(batch["src"], batch["src_pad_mask"], **options)
        return [len(h.tokens) for h in hypotheses]

    assert max(lengths(max_len_a=None, max_len_b=None, max_len=40)) > 3  # this model runs on when not stopped
    assert max(lengths(max_len_a=0, max_len_b=3, strategy="beam", beam_size=2, n_best=2)) <= 3
    assert max(lengths(max_len_a=0, max_len_b=3)) <= 3
    # A library call applies the model's own limits (max_len_a * source length + max_len_b), as `zoo translate` does.
    limit = int(translator.hparams.max_len_a * n + translator.hparams.max_len_b)
    for strategy in ("greedy", "beam"):
        ((best, *_),) = translator.generate(batch["src"], batch["src_pad_mask"], strategy=strategy)
        assert len(best.tokens) <= limit
        explicit = translator.generate(
            batch["src"], batch["src_pad_mask"], strategy=strategy, max_len_a=1.5, max_len_b=10
        )
        assert torch.equal(explicit[0][0].tokens, best.tokens)
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"max_len_a must be a finite number in \[0, inf\)"):
            translator.translate([src], max_len_a=bad)


def test_zoo_translate_tokenizes_each_sentence_once(translator, monkeypatch):
    """`zoo translate` measures every line (to sort and to catch long ones) and translates it: from one encoding."""
    import zoo.tasks.translation as translation
    from zoo.cli.translate import translate_chunks

    encoded = []
    real = translation.encode_sources
    monkeypatch.setattr(
        translation,
        "encode_sources",
        lambda tok, sources: encoded.extend(s for s in sources if isinstance(s, str)) or real(tok, sources),
    )
    lines = [f"a man runs {'fast ' * (i % 7)}in the park" for i in range(150)]
    chunks = list(translate_chunks(translator, iter(lines), 16, {"n_best": 1, "max_len_b": 3}))
    assert sum(map(len, chunks)) == len(lines)
    assert sorted(encoded) == sorted(lines)  # each line once, none twice
