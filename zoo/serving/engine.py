"""DecodeEngine: one decoding loop for many requests, which join the running batch at the next step.

A server thread submits ``Job``s; the engine's own thread runs the loop. At every step each running row
chooses its token by its own job's options (greedy, or sampling with the job's own seeded generator, so a row's
draws never depend on the others), finished rows leave at once (``reorder_state``), and the jobs that arrived
meanwhile (up to ``max_rows`` rows) join: their sources are encoded (a language model's prompt, all but its
last token, read) and their states joined to the batch (``nested.join_rows``: a Transformer's caches are padded
on the left, a source on the right, both masked). Then one ``next_log_probs`` call decodes every row: the
running rows' chosen tokens and the new rows' first input together, so a job's start costs its encoder call and
no decoder call of its own. While rows decode, arrivals gather for up to ``HOLD_STEPS`` steps, or until a quarter
of the batch's size has come, so that they share one encoder call (at 32 clients: a third of the encoder calls,
1.25x the sentences/s; BENCHMARKS.md, "zoo api under load"). A job's tokens are therefore those of
``generate`` run on it alone, up to floating-point rounding of the batched matrix products (the sources that
arrive together are encoded as one padded batch, as `zoo translate` encodes them).

Beam search keeps n rows per job that reorder among themselves, which this loop does not do: the beam jobs
admitted together run as ``generate`` batches, one per set of options, between two steps of the loop.
``batching=False`` serves one job at a time, the baseline benchmarks/serve_load.py compares against.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from lightning_utilities.core.apply_func import apply_to_collection

from zoo.generation.nested import join_rows
from zoo.generation.options import DecodingOptions, length_limits, length_penalty
from zoo.generation.sequential_decoding import choose
from zoo.modules.kv_cache import KVCache

HOLD_STEPS = 3  # steps a waiting job may be held back to start with others (see DecodeEngine._admit)


class EngineFull(RuntimeError):
    """The queue of waiting jobs is full: the server answers 503."""


@dataclass
class Job:
    """One request's decoding: its input, its options, and what it produced so far."""

    prompt: list[int]  # token ids to continue (a translator's: [<bos>])
    options: dict  # the decoding options the request sets (DecodingOptions' fields), over the model's defaults
    src: list[int] | None = None  # a translator's source ids, <eos> included
    # streaming: called on the engine's thread with each new token and whether it is the last; (None, True) when
    # the job fails or is dropped
    on_token: Callable[[int | None, bool], None] | None = None
    tokens: list[int] = field(default_factory=list)
    log_prob: float = 0.0
    hypotheses: list | None = None  # beam jobs: generate's n-best
    error: Exception | None = None
    cancelled: bool = False  # set by the server when the client went away: the job's rows leave at the next step
    finished: threading.Event = field(default_factory=threading.Event)
    on_finished: Callable[[], None] | None = None  # called on the engine's thread when it is done
    done_event: object = None  # what an asyncio server awaits instead (zoo/serving/app.py sets both)
    decoding: DecodingOptions | None = None  # all of them, checked (set by submit)
    limit: int = 0  # new tokens at most (set by submit)
    generator: torch.Generator | None = None

    def finish(self) -> None:
        self.finished.set()
        if self.on_finished is not None:
            self.on_finished()

    @property
    def score(self) -> float:
        return self.log_prob / length_penalty(len(self.tokens), self.decoding.length_penalty)

    def found(self) -> list[tuple[list[int], float]]:
        """Its hypotheses best first, (tokens, score) each: a beam job's n-best, or the one a stepping job chose."""
        if self.hypotheses is not None:
            return [(h.tokens.tolist(), h.score) for h in self.hypotheses]
        return [(self.tokens, self.score)]


class DecodeEngine:
    def __init__(self, model, max_rows: int = 64, max_waiting: int = 256, batching: bool = True):
        self.model, self.max_rows, self.batching = model.eval(), max_rows, batching
        self.waiting: queue.Queue[Job] = queue.Queue(max_waiting)
        self.translator = hasattr(model, "source_batch")
        self._held = 0  # steps that the waiting jobs have been held back (see _admit)
        self.load = EngineLoad()  # how busy the loop is, how full its batches (/health reports it)
        self._thread = threading.Thread(target=self._loop, name="zoo-decode", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> Job:
        """Queue ``job`` (its options checked here, so a bad one fails in the caller's thread); ``job.finished``
        is set when it is done. Raises EngineFull when ``max_waiting`` jobs already wait."""
        job.decoding = DecodingOptions(**{**self.model.decoding_defaults(), **job.options})
        job.decoding.check()
        job.limit = self._limit(job)
        try:
            self.waiting.put_nowait(job)
        except queue.Full:
            raise EngineFull(f"{self.waiting.maxsize} requests are waiting") from None
        return job

    def _limit(self, job: Job) -> int:
        sources = None if job.src is None else torch.tensor([len(job.src)])
        return int(length_limits(job.decoding, 1, len(job.prompt), self.model.context_size, sources)[0])

    # --- the loop, on the engine's thread -------------------------------------------------------

    def _loop(self) -> None:
        rows = Rows()
        while True:
            admitted = self._admit(len(rows.jobs), block=not rows.jobs)
            start = time.perf_counter()
            stepping = [job for job in admitted if job.decoding.strategy != "beam"]
            # a translator's new sources start as one batch (one encoder call); a language model's prompts,
            # of other lengths, one by one
            joining: list[Joining] = []
            for group in [stepping] if self.translator and stepping else [[job] for job in stepping]:
                self._safely(group, lambda: joining.append(self._prepare(group)))
            beams: dict = {}  # beam jobs with the same options (and a language model's prompt length) search together
            for job in admitted:
                if job.decoding.strategy == "beam":
                    beams.setdefault((job.decoding, None if self.translator else len(job.prompt)), []).append(job)
            for group in beams.values():
                self._safely(group, lambda: self._beam(group))
            if rows.jobs or joining:
                try:
                    self._step(rows, joining)
                except Exception as error:  # a bug: fail the running jobs, keep serving the next ones
                    for job in rows.jobs + [job for group in joining for job in group.jobs]:
                        if not job.finished.is_set():
                            fail(job, error)
                    rows = Rows()
            self.load.add(time.perf_counter() - start, len(rows.jobs))

    def _admit(self, running: int, block: bool) -> list[Job]:
        room = (self.max_rows - running) if self.batching else (0 if running else 1)
        # While rows decode, arrivals wait until a quarter of the batch's size has gathered, or for HOLD_STEPS
        # steps: a translator's start is one encoder call for all who join, whose cost hardly grows with them.
        few = running and self.waiting.qsize() < min(room, max(1, running // 4))
        self._held = self._held + 1 if few and self.waiting.qsize() else 0
        if few and 0 < self._held <= HOLD_STEPS:
            return []
        self._held = 0
        jobs = []
        try:
            if block and room:
                jobs.append(self.waiting.get())
            while len(jobs) < room:
                jobs.append(self.waiting.get_nowait())
        except queue.Empty:
            pass
        for job in jobs:
            if job.cancelled:  # gone before it started
                fail(job, None)
        return [job for job in jobs if not job.cancelled]

    @staticmethod
    def _safely(jobs: list[Job], start) -> None:
        try:
            start()
        except Exception as error:  # a bad input (too long for the model, say): these jobs fail, the rest go on
            for job in jobs:
                fail(job, error)

    @torch.inference_mode()  # as in generate (zoo/generation/decoding.py): the state lives in inference mode
    def _prepare(self, jobs: list[Job]) -> Joining:
        """The jobs' state before their prompt's last token, which is their first input in the next step.
        Several jobs start together only with prompts of one length (a translator's: <bos>); their sources are
        encoded as one padded, masked batch."""
        model, src, mask = self.model, None, None
        if self.translator:
            batch = model._collate_sources([(job.src[:-1], []) for job in jobs])
            src, mask = batch["src"], batch["src_pad_mask"]
        state = model.init_state(model.encode(src, mask), mask, len(jobs))
        prompts = torch.tensor([job.prompt for job in jobs])
        if prompts.shape[1] > 1:  # a language model's prompt: read all but the last token now
            _, state, _ = model.next_log_probs(prompts[:, :-1], state)
        for job in jobs:
            if job.decoding.strategy == "sample":
                seed = job.decoding.seed if job.decoding.seed is not None else int(torch.randint(2**62, ()))
                job.generator = torch.Generator().manual_seed(seed)
        return Joining(jobs, state, prompts[:, -1])

    @torch.no_grad()
    def _beam(self, jobs: list[Job]) -> None:
        options = {k: v for k, v in vars(jobs[0].decoding).items() if k != "progress"}
        if self.translator:
            batch = self.model._collate_sources([(job.src[:-1], []) for job in jobs])
            results = self.model.generate(batch["src"], batch["src_pad_mask"], **options)
        else:
            results = self.model.generate(prompt=torch.tensor([job.prompt for job in jobs]), **options)
        for job, hypotheses in zip(jobs, results):
            job.hypotheses = hypotheses
            job.tokens, job.log_prob = hypotheses[0].tokens.tolist(), hypotheses[0].log_prob
            job.finish()

    @torch.inference_mode()
    def _step(self, rows: Rows, joining: list[Joining]) -> None:
        """Every running row chooses its token and finished rows leave; the joining jobs' rows are added; then
        all rows decode one step, each from its chosen token or, for a new row, its prompt's last token."""
        model, eos = self.model, self.model.eos_id
        inputs, state = torch.zeros(0, dtype=torch.long), None
        if rows.jobs:
            chosen = self._choose(rows)  # (R,)
            tokens, picked = chosen.tolist(), rows.log_probs.gather(1, chosen[:, None]).squeeze(1).tolist()
            ended = []
            for job, token, log_prob in zip(rows.jobs, tokens, picked):
                job.tokens.append(token)
                job.log_prob += log_prob
                ended.append(job.cancelled or token == eos or len(job.tokens) >= job.limit)
                if job.on_token is not None:
                    job.on_token(None if job.cancelled else token, ended[-1])
            keep = [i for i, done in enumerate(ended) if not done]
            for job, done in zip(rows.jobs, ended):
                if done:
                    job.finish()
            state, inputs = rows.state, chosen
            if len(keep) < len(tokens):
                index = torch.tensor(keep, dtype=torch.long)
                state = (
                    apply_to_collection(model.reorder_state(state, index), KVCache, KVCache.trimmed) if keep else None
                )
                rows.jobs, inputs = [rows.jobs[i] for i in keep], chosen[index]
        for group in joining:
            state = group.state if state is None else join_rows(state, group.state)
            inputs = torch.cat([inputs, group.inputs])
            rows.jobs.extend(group.jobs)
        if not rows.jobs:
            rows.clear()
            return
        rows.log_probs, rows.state, _ = model.next_log_probs(inputs[:, None], state)

    def _choose(self, rows: Rows) -> torch.Tensor:
        """(R,) each row's token: the argmax of all greedy rows at once, a draw per sampling row from its own
        generator (as ``choose`` draws for an input alone), <eos> forbidden before a job's ``min_len``."""
        log_probs, eos = rows.log_probs, self.model.eos_id
        early = [i for i, job in enumerate(rows.jobs) if eos is not None and len(job.tokens) < job.decoding.min_len]
        if early:
            log_probs = log_probs.clone()
            log_probs[early, eos] = float("-inf")
        chosen = log_probs.argmax(-1)
        for i, job in enumerate(rows.jobs):
            if job.generator is not None:
                chosen[i] = choose(log_probs[i : i + 1], job.decoding, job.generator)[0]
        return chosen


def fail(job: Job, error: Exception | None) -> None:
    """End ``job`` without an answer: an error of its own, or (None) dropped because its client went away."""
    job.error = error
    if job.on_token is not None:
        job.on_token(None, True)
    job.finish()


@dataclass
class EngineLoad:
    """Counters of the loop since start-up: the seconds it worked (not waiting for jobs), its steps, and the rows
    they decoded (row_steps / steps: the mean batch)."""

    busy_seconds: float = 0.0
    steps: int = 0
    row_steps: int = 0
    running: int = 0  # rows in the batch now
    most_rows: int = 0  # the largest batch so far

    def add(self, seconds: float, rows: int) -> None:
        self.busy_seconds += seconds
        self.steps += rows > 0
        self.row_steps += rows
        self.running, self.most_rows = rows, max(self.most_rows, rows)


@dataclass
class Joining:
    """Jobs about to join the batch: their state before their first input, and that input (n,)."""

    jobs: list[Job]
    state: object
    inputs: torch.Tensor


class Rows:
    """The batch being decoded: one row per job, its next log-probabilities and the model's state."""

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self.jobs: list[Job] = []
        self.log_probs: torch.Tensor | None = None
        self.state = None
