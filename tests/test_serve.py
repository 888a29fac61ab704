"""`zoo serve`: the demo page in a real browser (Debian's headless Chromium, driven by selenium), and the limits
each request is held to."""

import shutil
import socket
import subprocess
import sys
import threading
import urllib.request

import pytest
import torch

import zoo
from tests.conftest import REPO, _zoo_env, readline_within
from zoo.demo import handlers
from zoo.hub.pretrained import registry
from zoo.serving.engine import DecodeEngine

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
TRANSLATOR, CHAR_RNN = "transformer-multi30k-en-fr", "char-rnn-shakespeare"


def test_requests_are_held_to_limits_with_messages_that_say_what_to_do():
    model, limits = zoo.load_pretrained(TRANSLATOR), handlers.Limits(source_chars=40)
    translator = DecodeEngine(model)
    for text, beam, n, message in (
        ("   \n", 5, 1, "nothing to translate"),
        ("a" * 41, 5, 1, "at most 40"),
        ("A dog.", 11, 1, "Beam size must lie in 1..10"),
        ("A dog.", 2, 3, r"1 to beam size \(2\)"),
    ):
        with pytest.raises(handlers.RequestError, match=message):
            handlers.translate(translator, text, beam, n, limits)
    result = handlers.translate(translator, "A dog\nruns.", 4, 3, limits)  # lines join into one sentence
    assert len(result.n_best) == len(result.details) == 3 and result.best == result.n_best[0][0]
    assert handlers.attention_image(result.details[2]).size[0] > 100  # each hypothesis has its own heatmap

    char_rnn = zoo.load_pretrained(CHAR_RNN)
    generate = lambda prompt, length, **o: handlers.generate(  # noqa: E731
        DecodeEngine(char_rnn),
        prompt,
        length,
        o.get("strategy", "sample"),
        o.get("t", 0.8),
        0,
        1.0,
        0,
        handlers.Limits(),
    )
    for prompt, length, options, message in (
        ("", 10, {}, "prompt is empty"),
        ("ROMEO:", 2001, {}, r"Length must lie in 1\.\.2000"),
        ("ROMEO: €", 10, {}, "characters not in the model's vocabulary"),
        ("ROMEO:", 10, {"t": 0}, "temperature must be > 0"),
    ):
        with pytest.raises(handlers.RequestError, match=message):
            generate(prompt, length, **options)
    assert generate("ROMEO:", 10) == generate("ROMEO:", 10) and len(generate("ROMEO:", 10)) == 16  # seeded
    assert generate("ROMEO:", 10) == "ROMEO:" + char_rnn.generate_text(
        "ROMEO:", 10, strategy="sample", temperature=0.8, seed=0
    )

    for served, text, n, steps, message in (
        (model, " \n", 3, 10, "nothing to search from"),
        (model, "a" * 41, 3, 10, "at most 40"),
        (model, "A dog.", 6, 10, r"Beam size must lie in 1\.\.5"),
        (char_rnn, "ROMEO:", 3, 41, r"Steps must lie in 1\.\.40"),
        (char_rnn, "ROMEO: €", 3, 10, "characters not in the model's vocabulary"),
    ):
        with pytest.raises(handlers.RequestError, match=message):
            handlers.beam_tree_image(served, text, n, steps, limits)
    assert handlers.beam_tree_image(char_rnn, "ROMEO:", 2, 5, limits).size[0] > 100


@pytest.mark.parametrize("name", sorted(n for n, entry in registry().items() if entry["class_path"] == "zoo.Seq2Seq"))
def test_a_shipped_seq2seq_translation_shows_its_attention_heatmap_as_the_transformers_does(name):
    result = handlers.translate(
        DecodeEngine(zoo.load_pretrained(name)), "A dog runs in the snow.", 3, 2, handlers.Limits()
    )
    for detail in result.details:
        weights = detail["attention"]  # (target pieces, source pieces): where each target piece looked
        assert weights.shape[1] == len(detail["src"]) and weights.shape[0] >= len(detail["tgt"])
        torch.testing.assert_close(weights.sum(-1), torch.ones(len(weights)))
        assert handlers.attention_image(detail).size[0] > 100


@pytest.mark.parametrize("name, beam", [(TRANSLATOR, 1), (TRANSLATOR, 4), ("seq2seq-luong-multi30k-en-fr", 1)])
def test_the_page_serves_many_people_at_once_each_getting_what_it_would_get_alone(name, beam):
    """Requests from several users at once join one batch on the engine; each gets the translations, scores and
    attention of translating its sentence alone (greedy; beam search runs the jobs admitted together as one).
    The attention is recomputed after decoding: for the RNN decoder too, it must be what decoding saw."""
    model = zoo.load_pretrained(name)
    engine, sentences = DecodeEngine(model), [f"A dog runs in the snow {'very ' * i}fast." for i in range(8)]
    start, results = threading.Barrier(len(sentences)), {}

    def user(i: int) -> None:
        start.wait()
        try:
            results[i] = handlers.translate(engine, sentences[i], beam, min(beam, 2), handlers.Limits())
        except Exception as error:  # reported below, with the user it happened to
            results[i] = error

    users = [threading.Thread(target=user, args=(i,)) for i in range(len(sentences))]
    for thread in users:
        thread.start()
    for thread in users:
        thread.join(timeout=120)
    assert len(results) == len(sentences), f"users {set(range(len(sentences))) - set(results)} had no answer in 120 s"
    failed = {i: r for i, r in results.items() if isinstance(r, Exception)}
    assert not failed, f"requests failed: {failed}"
    options = {"strategy": "greedy"} if beam == 1 else {"strategy": "beam", "beam_size": beam, "n_best": 2}
    for i, sentence in enumerate(sentences):
        alone = model.translate_n_best([sentence], truncate=True, attention=True, **options)[0]
        assert [t for t, _ in results[i].n_best] == [t for t, _, _ in alone]
        assert [s for _, s in results[i].n_best] == pytest.approx([s for _, s, _ in alone], abs=1e-3)
        for detail, (*_, expected) in zip(results[i].details, alone):
            assert detail["src"] == expected["src"] and detail["tgt"] == expected["tgt"]
            torch.testing.assert_close(detail["attention"], expected["attention"], atol=1e-4, rtol=1e-4)
    if beam == 1:
        assert engine.load.most_rows > 1  # the users shared a batch


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def page_url():
    port = free_port()
    command = [sys.executable, "-m", "zoo", "serve", "--pretrained", TRANSLATOR, "--pretrained", CHAR_RNN]
    server = subprocess.Popen(
        [*command, "--port", str(port)], cwd=REPO, env=_zoo_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        loaded = readline_within(server.stdout, 300, "zoo serve to load its models")
        assert loaded.startswith(f"zoo serve: 2 model(s) on http://127.0.0.1:{port}")
        ready = readline_within(server.stdout, 120, "zoo serve's page")  # the server says it is up, or exits
        assert ready.strip() == "zoo serve: the page is up", (
            f"zoo serve ended (rc {server.poll()}) before its page came up"
        )
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)  # and it answers
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them): apt-get install chromium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Headless, and nothing reaching for the network (this machine has none: Chromium would retry forever).
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"):
        options.add_argument(flag)
    for flag in ("--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1100")
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(browser, find, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(lambda _: find())


def open_tab(browser, name: str, shows: str = "generate-1") -> None:
    """Click the visible tab called ``name``; wait until the element ``shows`` is on screen."""
    from selenium.webdriver.common.by import By

    tabs = f"//button[@role='tab' and normalize-space()='{name}']"
    wait_for(browser, lambda: [b for b in browser.find_elements(By.XPATH, tabs) if b.is_displayed()])[0].click()
    wait_for(browser, lambda: browser.find_element(By.ID, shows).is_displayed())


def listening_addresses(port: int) -> set[str]:
    """The local addresses listening on ``port``, from the kernel's table (IPv4, hex little-endian)."""
    rows = [line.split() for line in open("/proc/net/tcp").read().splitlines()[1:]]
    listening = [row[1].split(":") for row in rows if row[3] == "0A"]  # state 0A: LISTEN
    return {
        ".".join(str(b) for b in reversed(bytes.fromhex(address))) for address, p in listening if int(p, 16) == port
    }


def test_the_page_listens_on_this_machine_only(page_url):
    port = int(page_url.rstrip("/").rpartition(":")[2])
    assert listening_addresses(port) == {"127.0.0.1"}  # not 0.0.0.0: nobody else on the network reaches it


def test_the_page_translates_shows_attention_and_generates(browser, page_url):
    from selenium.webdriver.common.by import By

    browser.get(page_url)
    source = wait_for(browser, lambda: browser.find_element(By.CSS_SELECTOR, "#source-0 textarea"))
    source.send_keys("A man in a blue shirt is riding a bike.")
    browser.find_element(By.ID, "translate-0").click()
    output = browser.find_element(By.CSS_SELECTOR, "#translation-0 textarea")
    french = wait_for(browser, lambda: output.get_attribute("value"))
    assert french == zoo.load_pretrained(TRANSLATOR).translate(["A man in a blue shirt is riding a bike."])[0]
    assert "homme" in french
    heatmap = wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#heatmap-0 img"))
    assert heatmap[0].get_attribute("src")  # the picture arrived
    assert "Traceback" not in browser.page_source

    open_tab(browser, CHAR_RNN)
    browser.find_element(By.ID, "generate-1").click()
    generated = browser.find_element(By.CSS_SELECTOR, "#generated-1 textarea")
    text = wait_for(browser, lambda: generated.get_attribute("value"))
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 300


def test_bad_input_shows_a_message_on_the_page_not_a_traceback(browser, page_url):
    from selenium.webdriver.common.by import By

    browser.get(page_url)
    open_tab(browser, CHAR_RNN)
    prompt = wait_for(browser, lambda: browser.find_element(By.CSS_SELECTOR, "#prompt-1 textarea"))
    prompt.clear()
    prompt.send_keys("ROMEO: €")
    browser.find_element(By.ID, "generate-1").click()
    wait_for(browser, lambda: "characters not in the model" in browser.find_element(By.TAG_NAME, "body").text)
    assert "Traceback" not in browser.page_source


def test_the_beam_search_view_draws_the_tree_of_what_the_user_types(browser, page_url):
    from selenium.webdriver.common.by import By

    browser.get(page_url)
    for index, model in enumerate((TRANSLATOR, CHAR_RNN)):
        open_tab(browser, model, shows="translate-0" if index == 0 else "generate-1")
        open_tab(browser, "Beam search", shows=f"tree-{index}")
        browser.find_element(By.ID, f"tree-{index}").click()
        tree = wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, f"#tree-image-{index} img"))
        assert tree[0].get_attribute("src")
    assert "Traceback" not in browser.page_source
