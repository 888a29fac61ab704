"""`zoo translate` streams: lines come out while the input is still coming in, memory holds one chunk,
Ctrl-C or SIGTERM leave a complete, aligned prefix that --skip-lines continues; a reader that leaves
(`| head`) ends a command quietly."""

import gzip
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, _zoo_env, readline_within, save_checkpoint, toy_pairs, zoo_here
from zoo import CharRNN
from zoo.cli.stop_signals import Stopped, stop_requests
from zoo.cli.translate import CHUNK_BATCHES, translate_chunks

BATCH = 2
CHUNK = CHUNK_BATCHES * BATCH  # input lines per chunk


def start_translate(checkpoint, *args, stdin=subprocess.PIPE):
    command = [sys.executable, "-m", "zoo", "translate", "--checkpoint", str(checkpoint), "--beam-size", "1"]
    command += ["--batch-size", str(BATCH), *args]
    return subprocess.Popen(
        command, cwd=REPO, env=_zoo_env(), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_lines_come_out_as_they_are_done_and_ctrl_c_leaves_an_aligned_prefix(translator, translator_checkpoint, capsys):
    sentences = toy_pairs(20 * CHUNK, seed=5)[0]
    expected = translator.translate(sentences)
    process = start_translate(translator_checkpoint)
    process.stdin.write("".join(s + "\n" for s in sentences[:CHUNK]))
    process.stdin.flush()  # and left open: more could come
    # The first chunk, while stdin is still open: nothing would come before the end if it did not stream.
    out = [readline_within(process.stdout, 120, "the first chunk's translations") for _ in range(BATCH)]
    assert out == [t + "\n" for t in expected[:BATCH]]
    process.stdin.write("".join(s + "\n" for s in sentences[CHUNK:]))
    process.stdin.close()
    out.append(readline_within(process.stdout, 120, "the second chunk"))  # it is translating the rest
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    out = "".join(out) + process.stdout.read()
    err = process.stderr.read().strip()
    done = len(out.splitlines())
    assert BATCH < done < len(sentences) and out.endswith("\n")
    assert out.splitlines() == expected[:done]  # complete and aligned: line i is input line i's translation
    assert err.endswith(
        f"stopped by Ctrl-C (SIGINT): the translations of input lines 1-{done} are written, each complete. "
        f"To go on, run the same command with --skip-lines {done}, appending to that output (>>)."
    )
    assert len(err.splitlines()) == 1, err
    rest = "".join(s + "\n" for s in sentences)
    options = ["--checkpoint", str(translator_checkpoint), "--beam-size", "1", "--skip-lines", str(done)]
    assert zoo_here("translate", *options, stdin=rest) == (0, "")  # the fix the message gives
    assert capsys.readouterr().out.splitlines() == expected[done:]


def test_a_signal_waits_for_a_write_to_finish_and_sigterm_stops_alike():
    with pytest.raises(Stopped) as stopped:
        with stop_requests() as stop:
            with stop.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.1)
                finished_the_write = True
            raise AssertionError("not stopped at the end of the deferred block")
    assert finished_the_write and stopped.value.exit_code == 143 and stopped.value.cause == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handlers are put back
    with pytest.raises(Stopped, match="SIGINT"):
        with stop_requests():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # a stop does not wait for anything else


def test_skip_lines_counts_n_best_indices_from_the_file_start_and_gzip_is_read(translator_checkpoint, tmp_path, capsys):
    sentences = toy_pairs(6, seed=2)[0]
    packed = tmp_path / "input.en"  # gzip under a plain name
    packed.write_bytes(gzip.compress("".join(s + "\n" for s in sentences).encode()))
    options = ["translate", "--checkpoint", str(translator_checkpoint), "--beam-size", "3", "--n-best", "2"]
    assert zoo_here(*options, "--input", str(packed)) == (0, "")
    whole = capsys.readouterr().out.splitlines()
    assert zoo_here(*options, "--input", str(packed), "--skip-lines", "4") == (0, "")
    assert capsys.readouterr().out.splitlines() == whole[8:] and whole[8].startswith("4 ||| ")
    assert zoo_here(*options, "--input", str(packed), "--skip-lines", "6") == (0, "")  # a finished job, resumed
    out, err = capsys.readouterr()
    assert out == "" and "--skip-lines 6 skips the whole input (6 lines): nothing was translated." in err
    plain = "".join(s + "\n" for s in sentences)
    assert zoo_here(*options, stdin=plain) == (0, "") and capsys.readouterr().out.splitlines() == whole


def test_a_reader_that_leaves_ends_a_command_quietly(translator_checkpoint, tmp_path, monkeypatch, capsys):
    vocab = "\nROMEabcdefgh :."
    char_checkpoint = save_checkpoint(CharRNN(len(vocab), vocab, hidden_size=8, num_layers=1), tmp_path / "c.ckpt")
    commands = [
        ["translate", "--checkpoint", str(translator_checkpoint)],
        ["generate", "--checkpoint", str(char_checkpoint), "--length", "50"],
    ]
    for command in commands:
        read_end, write_end = os.pipe()
        os.close(read_end)  # `| head` that has read what it wanted
        stdout = open(write_end, "w")
        monkeypatch.setattr(sys, "stdout", stdout)
        code, message = zoo_here(*command, stdin="a man runs\nthe dog\n")
        monkeypatch.undo()
        stdout.close()
        assert (code, message) == (128 + signal.SIGPIPE, ""), command
        err = capsys.readouterr().err
        assert "Broken pipe" not in err and "Traceback" not in err and "error" not in err


def test_memory_holds_one_chunk_whatever_the_input_size(translator):
    read = 0

    def lines():
        nonlocal read
        for sentence in toy_pairs(5 * CHUNK_BATCHES * 4, seed=3)[0]:
            read += 1
            yield sentence

    sizes, out = [], 0
    for chunk in translate_chunks(translator, lines(), 4, {"strategy": "greedy", "n_best": 1, "max_len": 3}):
        assert read - out <= CHUNK_BATCHES * 4  # lines read and not yet handed out: at most one chunk
        sizes.append(len(chunk))
        out += len(chunk)
    assert out == read and sizes[:3] == [4, CHUNK_BATCHES * 4, CHUNK_BATCHES * 4]  # the first: one batch
