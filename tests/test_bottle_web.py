"""The web bottle: served as a static folder, the page runs the student in headless Chromium,
shows a valid call for a typed request, and answers every head exactly as `predict` does."""

import functools
import http.server
import json
import os
import shutil
import threading

import pytest

from distillery.bottling import web
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.tasks.tool_calling.predictor import ToolCaller
from distillery.spirit import load_spirit
from distillery.tasks.tool_calling.validate import check_calls

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(small_run, tmp_path_factory):
    if CHROMIUM is None or shutil.which("npm") is None:
        pytest.skip("needs Chromium and npm (apt-get install -y chromium npm)")
    pytest.importorskip("playwright")
    cache = tmp_path_factory.mktemp("cache")  # npm packages are fetched here, never into ~/.cache
    previous = os.environ.get("DISTILLERY_CACHE")
    os.environ["DISTILLERY_CACHE"] = str(cache)
    try:
        folder = web.export(load_spirit(small_run.spirit_path()), tmp_path_factory.mktemp("web") / "small", None)
    finally:
        os.environ.pop("DISTILLERY_CACHE") if previous is None else os.environ.update(DISTILLERY_CACHE=previous)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def page(site, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    folder, url = site
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=FLAGS,
                                                        viewport={"width": 1200, "height": 800})
        tab = browser.new_page()
        errors = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.on("requestfailed", lambda request: errors.append(request.url))
        tab.goto(url)
        tab.wait_for_function("['ready', 'done'].includes(document.getElementById('status').textContent) || "
                              "document.getElementById('status').textContent.startsWith('error')", timeout=60_000)
        assert tab.text_content("#status") == "ready", (tab.text_content("#status"), errors)
        yield tab, errors
        browser.close()


@pytest.mark.slow
def test_the_folder_is_self_contained(site):
    folder, _ = site
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"index.html", "app.js", "calls.js", "mask.js", "style.css", "model.onnx", "bottle.json",
            "vendor/ort.wasm.bundle.min.mjs", "vendor/ort-wasm-simd-threaded.wasm", "vendor/tokenizers.min.mjs",
            "vendor/NOTICE.txt"} <= names
    for page_file in ("index.html", "app.js"):  # offline: nothing is loaded from another host
        assert "http://" not in (folder / page_file).read_text() and "https://" not in (folder / page_file).read_text()


def _caller(spirit):
    return ToolCaller.from_decoding(spirit.model, spirit.tokenizer, spirit.format, spirit.decoding)


@pytest.mark.slow
def test_typed_request_shows_a_valid_call_of_an_offered_tool(small_run, page, tmp_path):
    tab, errors = page
    spirit = load_spirit(small_run.spirit_path())
    tools = {t.name: t for t in spirit.tools}
    caller = _caller(spirit)
    # A request the small student answers with a call (it answers most with none).
    ex = next((ex for ex in read_jsonl(small_run.dir / "cuts" / "heads.jsonl")
               if caller.predict(ex["utterance"], [tools[n] for n in ex["tools"]]).calls), None)
    assert ex is not None, "the small student makes no call on any of its heads"
    for box in tab.query_selector_all("#tools input"):
        box.set_checked(box.get_attribute("value") in ex["tools"])
    tab.fill("#request", ex["utterance"])
    tab.click("#go")
    tab.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=60_000)
    calls = json.loads(tab.text_content("#calls"))
    offered = [tools[n] for n in ex["tools"]]
    assert calls and all(c["name"] in ex["tools"] for c in calls)
    assert check_calls(calls, offered) is None
    assert tab.text_content("#latency").endswith("tokens") and " ms" in tab.text_content("#latency")
    shot = tmp_path / "page.png"
    tab.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    assert errors == []


@pytest.mark.slow
def test_page_answers_every_head_as_predict_does(small_run, page):
    tab, _ = page
    spirit = load_spirit(small_run.spirit_path())
    tools = {t.name: t for t in spirit.tools}
    caller = _caller(spirit)
    heads = read_jsonl(small_run.dir / "cuts" / "heads.jsonl")
    answers = tab.evaluate("async (heads) => { const out = []; for (const h of heads) "
                           "out.push(await window.distillery.predict(h.utterance, h.tools)); return out; }",
                           [{"utterance": ex["utterance"], "tools": ex["tools"]} for ex in heads])
    for ex, answer in zip(heads, answers):
        expected = caller.predict(ex["utterance"], [tools[n] for n in ex["tools"]])
        assert (answer["text"], answer["calls"]) == (expected.text, expected.calls), ex["utterance"]


def test_no_npm_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLERY_CACHE", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DistilleryError, match="npm"):
        web.npm_modules()
