"""Two "nodes" on this machine, launched as users launch them on a cluster: `torchrun --nnodes 2` (one process
per node) and SLURM's environment variables (as `srun` sets them, read by Lightning's SLURMEnvironment), each
running `zoo fit --trainer.num_nodes 2`. What a cluster user relies on: every rank trains on its own data, the
cache and tokenizers are written once although both processes start together, one process writes the
checkpoints, and the weights at the end equal those of one node with two processes (same seed, same global batch).

Both "nodes" share this machine's disk, as cluster nodes share a network file system; nodes with disks of their
own each write their own cache (Lightning runs ``prepare_data`` on one process per node). Not tested here: two
real machines (network interfaces, NCCL, GPUs).
"""

import os
import socket
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO
from tests.test_distributed import DDP, records, unique_toy_corpus, write_config, zoo
from zoo.hub.checkpoints import read_checkpoint

TRANSFORMER = {
    "class_path": "zoo.Transformer",
    "init_args": {"d_model": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1, "ffn_dim": 32},
}
NODE_FLAGS = ["--trainer.num_nodes", "2", "--trainer.devices", "1", "--trainer.strategy", "ddp"]
NODE_FLAGS += ["--trainer.accelerator", "cpu"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_config(folder, corpus) -> str:
    data = {
        "class_path": "datamodules.TranslationDataModule",
        "init_args": {"source": str(corpus), "pair": "en-xx", "vocab_size": 80, "max_tokens": 240},
    }
    saves = [{"class_path": "tests.batch_recorder.RecordSaves", "init_args": {"log": str(folder / "saves.log")}}]
    return write_config(folder / "fit.yaml", folder / "fit", TRANSFORMER, data, plugins=saves)


def start_nodes(commands: list[list[str]], envs: list[dict], cwd) -> None:
    """Start every node's command at once (so their start-up races, as on a cluster) and wait for all."""
    nodes = [
        subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command, env in zip(commands, envs)
    ]
    outputs = [node.communicate(timeout=600) for node in nodes]
    for node, (_, stderr) in zip(nodes, outputs):
        assert node.returncode == 0, stderr[-4000:]


# One thread per process in every layout: Lightning gives each of a node's processes its share of the cores, so
# one node with two processes would run one thread each and two nodes two, and matrix products on other thread
# counts round differently. (On a cluster each node's processes have cores of their own.)
THREADS = {"OMP_NUM_THREADS": "1"}


def environment(cache, **variables) -> dict[str, str]:
    own = {"PYTHONPATH": str(REPO), "ZOO_CACHE_DIR": str(cache), "WANDB_MODE": "offline", **THREADS}
    return {**os.environ, **own, **variables}


def torchrun_nodes(folder, config: str) -> None:
    port = str(free_port())
    commands = [
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1"]
        + ["--node-rank", str(node), "--master-addr", "127.0.0.1", "--master-port", port]
        + ["-m", "zoo", "fit", "--config", config, *NODE_FLAGS]
        for node in (0, 1)
    ]
    start_nodes(commands, [environment(folder / "cache")] * 2, folder)


def slurm_nodes(folder, config: str) -> None:
    """As `srun` starts a job's tasks, one per node (`sbatch --nodes 2 --ntasks-per-node 1`)."""
    job = {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "zoo-fit",
        "SLURM_NTASKS": "2",
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_NODELIST": "127.0.0.1",  # where Lightning finds the main node (here both "nodes")
        "MASTER_PORT": str(free_port()),
    }
    envs = [
        environment(folder / "cache", **job, SLURM_PROCID=str(node), SLURM_LOCALID="0", SLURM_NODEID=str(node))
        for node in (0, 1)
    ]
    command = [sys.executable, "-m", "zoo", "fit", "--config", config, *NODE_FLAGS]
    start_nodes([command, command], envs, folder)


def one_node_two_processes(folder, config: str, monkeypatch) -> None:
    monkeypatch.setenv("ZOO_CACHE_DIR", str(folder / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", THREADS["OMP_NUM_THREADS"])
    zoo("fit", "--config", config, *DDP, cwd=folder)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same job on one node with two processes: its records and final weights."""
    folder = tmp_path_factory.mktemp("one-node")
    corpus = unique_toy_corpus(folder / "toy")
    with pytest.MonkeyPatch.context() as monkeypatch:
        one_node_two_processes(folder, run_config(folder, corpus), monkeypatch)
    return folder, corpus


@pytest.mark.slow  # three 2-process runs: ~60 s
@pytest.mark.parametrize("launch", [torchrun_nodes, slurm_nodes], ids=["torchrun", "slurm"])
def test_two_nodes_train_as_one_node_with_two_processes(tmp_path, reference, launch):
    one_node, corpus = reference
    launch(tmp_path, run_config(tmp_path, corpus))
    ranks = records(tmp_path / "fit")

    assert [r["world_size"] for r in ranks] == [2, 2]
    seen = [{tuple(row) for b in r["batches"] for row in b["rows"]} for r in ranks]
    assert seen[0] and seen[1] and not seen[0] & seen[1]  # every rank its own data
    assert [r["batches"] for r in ranks] == [r["batches"] for r in records(one_node / "fit")]  # and the same as there

    # Both processes started together and shared the cache: each file was written by one of them, once.
    written = [item for r in ranks for item in r["cache_written"]]
    assert sorted(written) == sorted(set(written)) and {"tokenizers", "train tokens", "val tokens"} <= set(written)
    # One process wrote the checkpoints, each file once.
    lines = [line.split() for line in (tmp_path / "saves.log").read_text().splitlines()]
    assert len({pid for pid, _ in lines}) == 1 and len({path for _, path in lines}) == len(lines) > 0

    ours = read_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    theirs = read_checkpoint(one_node / "ckpt" / "last.ckpt")
    assert ours["global_step"] == theirs["global_step"] > 0
    for name, weight in theirs["state_dict"].items():
        assert torch.equal(ours["state_dict"][name], weight), f"{name} differs from one node with two processes"
