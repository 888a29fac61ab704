"""Read the records of an offline W&B run file (run-<id>.wandb), to prove what reached the run.

The file is a 7-byte W&B header followed by a LevelDB-style log: 32 KiB blocks of chunks,
each chunk a 7-byte header (crc32, little-endian length, type) and a slice of one
protobuf ``Record``; types FULL=1, FIRST=2, MIDDLE=3, LAST=4 reassemble records.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32 * 1024
FILE_HEADER = 7
CHUNK_HEADER = 7


def read_records(path: Path) -> list[pb.Record]:
    raw = path.read_bytes()
    assert raw[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pending, pos = [], b"", FILE_HEADER
    while pos + CHUNK_HEADER <= len(raw):
        block_left = BLOCK - pos % BLOCK
        if block_left < CHUNK_HEADER:  # the rest of a block too short for a header is padding
            pos += block_left
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos : pos + CHUNK_HEADER])
        if kind == 0 and length == 0:
            break
        chunk = raw[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def history_rows(path: Path) -> list[dict]:
    return [
        {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
        for r in read_records(path)
        if r.WhichOneof("record_type") == "history"
    ]


def config_keys(path: Path) -> set[str]:
    return {
        item.key or item.nested_key[0]
        for r in read_records(path)
        if r.WhichOneof("record_type") == "config"
        for item in r.config.update
    }


def config_values(path: Path) -> dict:
    """The run config as W&B holds it: each top-level key's latest value."""
    values = {}
    for r in read_records(path):
        if r.WhichOneof("record_type") == "config":
            for item in r.config.update:
                values[item.key or item.nested_key[0]] = json.loads(item.value_json)
    return values
