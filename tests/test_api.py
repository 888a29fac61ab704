"""`zoo api`: the HTTP API on the continuous-batching engine, through a real server and real clients (httpx and
OpenAI's own client): answers equal `zoo translate`'s under concurrency, limits and bad input get 4xx/5xx
messages naming the field, and the server goes on serving."""

import asyncio
import json
import sys

import httpx
import pytest

import zoo
from tests.conftest import REPO, _zoo_env, readline_within
from tests.test_serve import free_port

TRANSLATOR, CHAR_RNN = "transformer-multi30k-en-fr", "char-rnn-shakespeare"
SENTENCES = [
    "A man in a blue shirt is riding a bike.",
    "Two dogs play in the snow.",
    "A little girl is sitting on a bench with her mother while people walk by in the park.",
    "People are shopping.",
    "A woman holds a red umbrella in the rain.",
    "Three men are playing football on a green field next to a white house.",
]
KEY = "test-key"


@pytest.fixture(scope="module")
def api_url():
    import subprocess

    port = free_port()
    command = [sys.executable, "-m", "zoo", "api", "--pretrained", TRANSLATOR, "--pretrained", CHAR_RNN]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--api-key", KEY], cwd=REPO, env=_zoo_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        line = readline_within(server.stdout, 300, "zoo api to load its models")
        assert line.startswith(f"zoo api: 2 model(s) on http://127.0.0.1:{port}"), line
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):  # uvicorn starts listening just after the line
            try:
                httpx.get(f"{url}/health", headers={"x-api-key": KEY}, timeout=1)
                break
            except httpx.TransportError:
                asyncio.run(asyncio.sleep(0.1))
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize(
    "flags, message", [(["--threads", "0"], "--threads must be at least 1"), (["--port", "0"], "--port must lie")]
)
def test_bad_flags_end_in_one_line_naming_the_flag(flags, message):
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "zoo", "api", "--pretrained", TRANSLATOR, *flags],
        cwd=REPO,
        env=_zoo_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def post(url, path, body, key=KEY, **kwargs):
    return httpx.post(f"{url}{path}", json=body, headers={"authorization": f"Bearer {key}"}, timeout=60, **kwargs)


def test_concurrent_translations_equal_the_offline_ones(api_url):
    model = zoo.load_pretrained(TRANSLATOR)
    offline_greedy = model.translate(SENTENCES)
    offline_beam = [n[0][0] for n in model.translate_n_best(SENTENCES, strategy="beam", beam_size=5)]
    offline_sampled = [model.translate([s], strategy="sample", seed=3)[0] for s in SENTENCES]

    async def many():
        async with httpx.AsyncClient(headers={"x-api-key": KEY}, timeout=60) as client:

            async def one(sentence, options):
                reply = await client.post(
                    f"{api_url}/translate", json={"model": TRANSLATOR, "text": sentence, **options}
                )
                assert reply.status_code == 200, reply.text
                return reply.json()["translations"][0]["text"]

            requests = [one(s, {}) for s in SENTENCES] * 3  # 18 at once: they share batches
            requests += [one(s, {"strategy": "beam", "beam_size": 5}) for s in SENTENCES]
            requests += [one(s, {"strategy": "sample", "seed": 3}) for s in SENTENCES]
            return await asyncio.gather(*requests)

    answers = asyncio.run(many())
    n = len(SENTENCES)
    assert answers[: 3 * n] == offline_greedy * 3
    assert answers[3 * n : 4 * n] == offline_beam
    assert answers[4 * n :] == offline_sampled  # a seeded sample does not depend on what else was in the batch
    load = httpx.get(f"{api_url}/health", headers={"x-api-key": KEY}).json()["engines"][TRANSLATOR]
    assert load["most_rows"] > 1 and load["steps"] > 0 and load["busy_seconds"] > 0  # the requests shared batches
    assert load["waiting"] == 0  # all answered: none left in the queue


def test_a_list_of_texts_and_n_best(api_url):
    reply = post(
        api_url,
        "/translate",
        {"model": TRANSLATOR, "texts": SENTENCES[:2], "strategy": "beam", "beam_size": 4, "n_best": 3},
    )
    assert reply.status_code == 200, reply.text
    translations = reply.json()["translations"]
    assert [len(t) for t in translations] == [3, 3]
    assert translations[0][0]["score"] >= translations[0][1]["score"]


def test_generation_streams_and_equals_the_offline_text(api_url):
    char_rnn = zoo.load_pretrained(CHAR_RNN)
    offline = char_rnn.generate_text("ROMEO:", 120, strategy="sample", seed=5, temperature=0.8)
    body = {"model": CHAR_RNN, "prompt": "ROMEO:", "length": 120, "strategy": "sample", "seed": 5, "temperature": 0.8}
    assert post(api_url, "/generate", body).json()["text"] == offline
    pieces = []
    with httpx.stream(
        "POST", f"{api_url}/generate", json={**body, "stream": True}, headers={"x-api-key": KEY}, timeout=60
    ) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        for line in reply.iter_lines():
            if line.startswith("data: "):
                pieces.append(json.loads(line[6:]))
    assert "".join(p["text"] for p in pieces) == offline and pieces[-1]["done"]


def test_the_openai_client_streams_a_completion_from_a_char_model(api_url):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{api_url}/v1", api_key=KEY)
    offline = zoo.load_pretrained(CHAR_RNN).generate_text("ROMEO:", 60, strategy="sample", seed=1, temperature=0.8)
    stream = client.completions.create(
        model=CHAR_RNN, prompt="ROMEO:", max_tokens=60, temperature=0.8, seed=1, stream=True
    )
    assert "".join(chunk.choices[0].text for chunk in stream) == offline
    whole = client.completions.create(model=CHAR_RNN, prompt="ROMEO:", max_tokens=60, temperature=0.8, seed=1)
    assert whole.choices[0].text == offline and whole.usage.completion_tokens == 60
    assert {m.id for m in client.models.list().data} == {TRANSLATOR, CHAR_RNN}


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/translate", {"model": TRANSLATOR, "text": "A dog.", "beam": 3}, 400, "unknown field 'beam'"),
        ("/translate", {"model": TRANSLATOR, "text": 5}, 400, "field 'text'"),
        ("/translate", {"model": TRANSLATOR, "text": "A dog.", "beam_size": "3"}, 400, "field 'beam_size'"),
        ("/translate", {"model": "nope", "text": "A dog."}, 404, "unknown model 'nope'"),
        ("/translate", {"model": TRANSLATOR}, 400, "exactly one of 'text'"),
        ("/translate", {"model": TRANSLATOR, "text": "a" * 1001}, 400, "at most 1000"),
        ("/translate", {"model": TRANSLATOR, "texts": ["a"] * 65}, 400, "at most 64"),
        ("/translate", {"model": TRANSLATOR, "text": "A dog.", "beam_size": 11}, 400, "at most 10"),
        ("/translate", {"model": TRANSLATOR, "text": "A dog.", "seed": 1}, 400, "only change(s) sampling"),
        ("/translate", {"model": CHAR_RNN, "text": "A dog."}, 400, "use /generate"),
        ("/generate", {"model": CHAR_RNN, "prompt": "ROMEO: €"}, 400, "not in the model's vocabulary"),
        ("/generate", {"model": CHAR_RNN, "prompt": "A", "length": 2001}, 400, "at most 2000"),
        ("/generate", {"model": CHAR_RNN, "prompt": "A", "strategy": "beam", "stream": True}, 400, "'stream'"),
    ],
)
def test_bad_requests_get_a_message_naming_the_problem(api_url, path, body, status, message):
    reply = post(api_url, path, body)
    assert reply.status_code == status and message in reply.json()["error"], reply.text
    assert "Traceback" not in reply.text


def test_malformed_json_a_big_body_and_a_wrong_key_are_refused_and_the_server_goes_on(api_url):
    headers = {"x-api-key": KEY, "content-type": "application/json"}
    reply = httpx.post(f"{api_url}/translate", content=b'{"model": ', headers=headers)
    assert reply.status_code == 400 and "not valid JSON" in reply.json()["error"]
    reply = httpx.post(f"{api_url}/translate", content=b" " * 70_000, headers=headers)
    assert reply.status_code == 413 and "at most 64000" in reply.json()["error"]
    chunks = (b" " * 10_000 for _ in range(7))  # sent chunked: no Content-Length to check
    reply = httpx.post(f"{api_url}/translate", content=chunks, headers=headers)
    assert reply.status_code == 413 and "passed 64000 bytes" in reply.json()["error"]
    assert post(api_url, "/translate", {"model": TRANSLATOR, "text": "A dog."}, key="wrong").status_code == 401
    assert httpx.get(f"{api_url}/health").status_code == 401  # the key guards every route
    assert post(api_url, "/translate", {"model": TRANSLATOR, "text": "A dog."}).status_code == 200


def test_a_client_that_disconnects_mid_stream_frees_its_rows(api_url):
    body = {"model": CHAR_RNN, "prompt": "ROMEO:", "length": 2000, "strategy": "sample", "stream": True}
    with httpx.stream("POST", f"{api_url}/generate", json=body, headers={"x-api-key": KEY}, timeout=60) as reply:
        for i, _ in enumerate(reply.iter_lines()):
            if i > 10:
                break  # and the connection closes
    # the engine goes on serving (the dropped job left its batch; a later request is answered at once)
    assert post(api_url, "/generate", {"model": CHAR_RNN, "prompt": "A", "length": 5}).status_code == 200


def test_a_full_queue_answers_503_with_retry_after_and_a_request_over_time_504():
    import time
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from zoo.serving.app import build_app
    from zoo.serving.schemas import ApiLimits

    model = zoo.load_pretrained(CHAR_RNN)
    app = build_app({CHAR_RNN: (model, "card")}, ApiLimits(waiting=1, wait_seconds=0.5), batching=False)
    body = {"model": CHAR_RNN, "prompt": "A", "length": 2000}  # seconds of decoding, one at a time
    with TestClient(app) as client, ThreadPoolExecutor(2) as pool:
        first = pool.submit(client.post, "/generate", json=body)  # decoding
        time.sleep(0.1)
        second = pool.submit(client.post, "/generate", json=body)  # the one place in the queue
        time.sleep(0.1)
        third = client.post("/generate", json=body)
        assert third.status_code == 503 and third.headers["retry-after"] == "1", third.text
        assert "busy" in third.json()["error"]
        assert first.result().status_code == 504 and "longer than 0.5 s" in first.result().json()["error"]
        assert second.result().status_code == 504
        short = client.post("/generate", json={**body, "length": 5})  # the timed-out jobs left: served at once
        assert short.status_code == 200 and len(short.json()["text"]) == 5


def test_a_char_models_beam_search_through_the_api_equals_generate(api_url):
    expected = zoo.load_pretrained(CHAR_RNN).generate_texts("ROMEO:", 20, strategy="beam", beam_size=3)[0][0]
    body = {"model": CHAR_RNN, "prompt": "ROMEO:", "length": 20, "strategy": "beam", "beam_size": 3}
    reply = post(api_url, "/generate", body)
    assert reply.status_code == 200 and reply.json()["text"] == expected, reply.text
