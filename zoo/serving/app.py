"""The HTTP API (FastAPI): translate, generate (streamed as server-sent events), OpenAI's /v1/completions for the
language models, the list of models with their cards, and a health check. Every model has its DecodeEngine
(zoo/serving/engine.py), so concurrent requests decode in one batch.

Errors are JSON ``{"error": message}`` naming the field or the limit: 400 for a bad body, 401 for a missing or
wrong API key, 404 for an unknown model, 413 for a body over the limit, 503 (with Retry-After) when a model's
queue is full, 504 when a request waited longer than the limit. A client that disconnects mid-stream has its
rows dropped from the batch at the next step.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from dataclasses import dataclass

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from zoo.serving.engine import DecodeEngine, EngineFull, Job
from zoo.serving.schemas import ApiLimits, CompletionRequest, GenerateRequest, TranslateRequest
from zoo.tasks.translation_inputs import checked_sources


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


@dataclass
class ServedModel:
    name: str
    model: object
    card: str  # Markdown
    engine: DecodeEngine

    @property
    def translator(self) -> bool:
        return hasattr(self.model, "source_batch")


def build_app(
    models: dict[str, tuple[object, str]],
    limits: ApiLimits = ApiLimits(),
    api_key: str | None = None,
    batching: bool = True,
) -> FastAPI:
    """``models``: name -> (model, card). ``api_key``: required on every request when set."""
    served = {
        name: ServedModel(name, model, card, DecodeEngine(model, limits.batch_rows, limits.waiting, batching))
        for name, (model, card) in models.items()
    }
    app = FastAPI(title="seq-zoo API", docs_url=None, redoc_url=None)
    # FastAPI's own limit for a body sent in chunks (no Content-Length for `guard`): 413 once it grows past it
    body_limit = {"max_body_size": limits.body_bytes}

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if api_key is not None and not _key_matches(request, api_key):
            return _error(401, "missing or wrong API key: send 'Authorization: Bearer KEY' (or X-API-Key: KEY)")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limits.body_bytes:
            return _error(413, f"the body has {length} bytes; this server takes at most {limits.body_bytes}")
        return await call_next(request)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's own: 404 for a path, 405, 413 from max_body_size
    async def http_error(request, error: StarletteHTTPException):
        if error.status_code == 413:
            return _error(413, f"the body passed {limits.body_bytes} bytes, the most this server takes")
        return _error(error.status_code, str(error.detail), error.headers)

    @app.exception_handler(ApiError)
    async def api_error(request, error: ApiError):
        return _error(error.status, error.message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_body(request, error: RequestValidationError):
        return _error(400, "; ".join(_describe(e) for e in error.errors()))

    @app.get("/health")
    async def health():
        # the engines' load, for whoever watches the server (and benchmarks/serve_load.py)
        engines = {name: {**vars(s.engine.load), "waiting": s.engine.waiting.qsize()} for name, s in served.items()}
        return {"status": "ok", "models": sorted(served), "engines": engines}

    @app.get("/v1/models")
    async def list_models():
        return {
            "object": "list",
            "data": [
                {
                    "id": s.name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "seq-zoo",
                    "kind": "translation" if s.translator else "generation",
                    "card": s.card,
                }
                for s in served.values()
            ],
        }

    @app.post("/translate", **body_limit)
    async def translate(body: TranslateRequest):
        model = _served(served, body.model, translation=True)
        texts = [body.text] if body.text is not None else body.texts
        if len(texts) > limits.texts:
            raise ApiError(400, f"'texts' holds {len(texts)} sentences; this server takes at most {limits.texts}")
        _check_text_lengths(texts, limits)
        _check_beam(body, limits)
        options = body.options()
        try:
            sources = checked_sources(model.model.encode_sources(texts), model.model.max_source_tokens, True)
        except ValueError as error:
            raise ApiError(400, f"'text': {error}") from None
        jobs = [
            _submit(model, Job([model.model.bos_id], options, src=ids + [model.model.eos_id])) for ids, _ in sources
        ]
        await _wait(jobs, limits)
        results = [_n_best(model, job) for job in jobs]
        return {"model": model.name, "translations": results[0] if body.text is not None else results}

    @app.post("/generate", **body_limit)
    async def generate(body: GenerateRequest):
        model = _served(served, body.model, translation=False)
        _check_text_lengths([body.prompt], limits)
        _check_beam(body, limits)
        if body.length > limits.new_tokens:
            raise ApiError(400, f"'length' is {body.length}; this server generates at most {limits.new_tokens}")
        if body.stream and body.strategy == "beam":
            raise ApiError(400, "'stream' needs strategy greedy or sample: beam search knows its text only at the end")
        options = {**body.options(), "max_len": body.length}
        prompt = _prompt_ids(model, body.prompt)
        if not body.stream:
            job = _submit(model, Job(prompt, options))
            await _wait([job], limits)
            return {"model": model.name, "prompt": body.prompt, "text": _text(model, job.tokens), "score": job.score}
        return _stream(model, prompt, options, limits, lambda piece, end: {"text": piece, "done": end})

    @app.post("/v1/completions", **body_limit)
    async def completions(body: CompletionRequest):
        model = _served(served, body.model, translation=False)
        _check_text_lengths([body.prompt], limits)
        if body.max_tokens > limits.new_tokens:
            raise ApiError(400, f"'max_tokens' is {body.max_tokens}; this server generates at most {limits.new_tokens}")
        options = {"max_len": body.max_tokens}
        if body.temperature > 0:
            options.update(strategy="sample", temperature=body.temperature, seed=body.seed)
            if body.top_p < 1:
                options["top_p"] = body.top_p
        prompt = _prompt_ids(model, body.prompt)
        identity = {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model.name,
        }
        if not body.stream:
            job = _submit(model, Job(prompt, options))
            await _wait([job], limits)
            reason = "stop" if job.tokens and job.tokens[-1] == model.model.eos_id else "length"
            choice = {"text": _text(model, job.tokens), "index": 0, "logprobs": None, "finish_reason": reason}
            return {
                **identity,
                "choices": [choice],
                "usage": {
                    "prompt_tokens": len(prompt),
                    "completion_tokens": len(job.tokens),
                    "total_tokens": len(prompt) + len(job.tokens),
                },
            }

        def chunk(piece: str, end: bool) -> dict:
            choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": "length" if end else None}
            return {**identity, "choices": [choice]}

        return _stream(model, prompt, options, limits, chunk, done_marker=True)

    return app


# --- helpers ---------------------------------------------------------------------------------------


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _key_matches(request: Request, key: str) -> bool:
    given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
    return hmac.compare_digest(given.encode(), key.encode())


def _describe(error: dict) -> str:
    """One pydantic error as "field 'x': what is wrong"."""
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    if error.get("type") == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'malformed')})"
    if error.get("type") == "extra_forbidden":
        return f"unknown field '{where}'"
    return f"field '{where}': {error.get('msg', 'invalid')}" if where else error.get("msg", "invalid body")


def _served(served: dict[str, ServedModel], name: str, translation: bool) -> ServedModel:
    if name not in served:
        raise ApiError(404, f"unknown model {name!r}: this server serves {', '.join(sorted(served))}")
    model = served[name]
    if model.translator != translation:
        route = "/generate or /v1/completions" if model.translator is False else "/translate"
        raise ApiError(400, f"{name} is a {'translation' if model.translator else 'language'} model: use {route}")
    return model


def _check_text_lengths(texts: list[str], limits: ApiLimits) -> None:
    for i, text in enumerate(texts):
        if len(text) > limits.text_chars:
            raise ApiError(400, f"text {i} has {len(text)} characters; this server takes at most {limits.text_chars}")
        if not text.strip() and text != "\n":
            raise ApiError(400, f"text {i} is empty: there is nothing to work on")


def _check_beam(body, limits: ApiLimits) -> None:
    if body.beam_size > limits.beam_size:
        raise ApiError(400, f"'beam_size' is {body.beam_size}; this server searches at most {limits.beam_size}")


def _prompt_ids(model: ServedModel, prompt: str) -> list[int]:
    try:
        return model.model.vocab.encode(prompt).tolist()
    except ValueError as error:  # characters the model has never seen
        raise ApiError(400, f"'prompt': {error}") from None


def _submit(model: ServedModel, job: Job) -> Job:
    try:
        return model.engine.submit(_notifying(job))
    except EngineFull as error:
        raise ApiError(503, f"the server is busy ({error}): retry in a second", {"Retry-After": "1"}) from None
    except ValueError as error:  # options that contradict each other, or a length the model cannot hold
        raise ApiError(400, str(error)) from None


async def _wait(jobs: list[Job], limits: ApiLimits) -> None:
    """Until every job is done (each ``_submit``ted with ``_notifying``), or 504 after ``limits.wait_seconds``."""
    try:
        await asyncio.wait_for(asyncio.gather(*(job.done_event.wait() for job in jobs)), limits.wait_seconds)
    except TimeoutError:
        for job in jobs:
            job.cancelled = True
        raise ApiError(
            504, f"the request took longer than {limits.wait_seconds:g} s; try a shorter one or later"
        ) from None
    errors = [job.error for job in jobs if job.error is not None]
    if errors:
        raise ApiError(400, str(errors[0]))


def _notifying(job: Job) -> Job:
    """``job`` with an asyncio event the engine's thread sets when it is done (no thread waits per request)."""
    loop, event = asyncio.get_running_loop(), asyncio.Event()
    job.done_event = event
    job.on_finished = lambda: loop.call_soon_threadsafe(event.set)
    return job


def _text(model: ServedModel, tokens: list[int]) -> str:
    if model.translator:
        return model.model.detokenize(torch.tensor(tokens, dtype=torch.long))
    return model.model.vocab.decode(torch.tensor(tokens, dtype=torch.long))


def _n_best(model: ServedModel, job: Job) -> list[dict]:
    return [{"text": _text(model, tokens), "score": score} for tokens, score in job.found()]


def _stream(
    model: ServedModel, prompt: list[int], options: dict, limits: ApiLimits, event, done_marker=False
) -> StreamingResponse:
    """Server-sent events: one per new token, as soon as the engine has it; a client gone cancels the job."""
    loop = asyncio.get_running_loop()
    tokens: asyncio.Queue = asyncio.Queue()
    job = Job(prompt, options, on_token=lambda *item: loop.call_soon_threadsafe(tokens.put_nowait, item))
    _submit(model, job)

    async def events():
        try:
            while True:
                try:
                    token, last = await asyncio.wait_for(tokens.get(), limits.wait_seconds)
                except TimeoutError:
                    yield _sse({"error": f"no new token for {limits.wait_seconds:g} s"})
                    return
                if token is None:
                    yield _sse({"error": str(job.error or "the request was dropped")})
                    return
                yield _sse(event("" if token == model.model.eos_id else _text(model, [token]), last))
                if last:
                    break
            if done_marker:
                yield "data: [DONE]\n\n"
        finally:
            job.cancelled = True  # a client that went away: its row leaves the batch at the next step

    return StreamingResponse(events(), media_type="text/event-stream")


def _sse(payload: dict) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
