"""The page at ``GET /`` in a real headless browser (Debian's chromium + chromium-driver, driven by selenium)
against a real ``seqnlp serve`` process: type a sentence, click, check what is rendered.

CI (``CI`` set; ``.ci/run`` installs chromium) fails when the browser is missing; elsewhere the test skips.
``SEQNLP_SCREENSHOT=docs/serve_page.png`` also saves the sentiment page there (the README's picture)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from serve_util import ROOT, ServeProcess

from seqnlp.runner import load

SENTENCE = "a gorgeous , witty , seductive movie ."


def _need(what: str, ok: bool) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing (CI installs it: see .ci/run)")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    _need("selenium (pip install -e '.[dev]')", webdriver is not None)
    for mod in ("fastapi", "uvicorn"):
        try:
            __import__(mod)
        except ImportError:
            _need(f"{mod} (pip install -e '.[dev]')", False)
    binary = next((b for b in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if b), None)
    driver_path = shutil.which("chromedriver") or next(
        (p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if Path(p).is_file()), None)
    _need("chromium (apt-get install chromium)", binary is not None)
    _need("chromedriver (apt-get install chromium-driver)", driver_path is not None)
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=900,700",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _ask(driver, url: str, text: str):
    """Open the page, type ``text`` into the box, click Predict and wait for the answer."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, 60)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready")
    box = driver.find_element(By.ID, "input")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "run").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("done", "error"))
    assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done", \
        driver.find_element(By.ID, "error").text
    return By


def test_sentiment_page_shows_the_label_and_its_probabilities_as_bars(browser, smoke_runs, tmp_path):
    run = smoke_runs("sentiment")
    want = load(run, "cpu", threads=1).predict([SENTENCE])[0]
    with ServeProcess(run) as s:
        By = _ask(browser, s.url + "/", SENTENCE)
        result = browser.find_element(By.CSS_SELECTOR, "#output .result")
        assert result.find_element(By.CLASS_NAME, "label").text == want["label"]
        bars = result.find_elements(By.CLASS_NAME, "bar")
        assert sorted(b.get_attribute("data-label") for b in bars) == sorted(want["probs"])
        for b in bars:
            p = want["probs"][b.get_attribute("data-label")]
            assert abs(float(b.get_attribute("data-prob")) - p) < 1e-4
            assert b.find_element(By.CLASS_NAME, "bar-value").text == f"{100 * p:.1f}%"
            track = b.find_element(By.CLASS_NAME, "bar-track").size["width"]
            fill = b.find_element(By.CLASS_NAME, "bar-fill").size["width"]
            assert abs(fill - p * track) <= 2  # the bar is drawn as long as the probability says
        assert "top" in next(b for b in bars if b.get_attribute("data-label") == want["label"]).get_attribute("class")
        shot = tmp_path / "serve_page.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 1000
        if os.environ.get("SEQNLP_SCREENSHOT"):
            shutil.copyfile(shot, ROOT / os.environ["SEQNLP_SCREENSHOT"])


def test_pos_page_colours_each_token_by_its_tag(browser, smoke_runs):
    run = smoke_runs("pos_tagging")
    sentence = "I saw her duck ."
    want = load(run, "cpu", threads=1).predict([sentence])[0]
    with ServeProcess(run) as s:
        By = _ask(browser, s.url + "/", sentence)
        tokens = browser.find_elements(By.CSS_SELECTOR, "#output .token")
        assert [t.find_element(By.CLASS_NAME, "word").text for t in tokens] == want["tokens"]
        assert [t.find_element(By.CLASS_NAME, "tag").text for t in tokens] == want["tags"]
        colours = {}
        for t, tag in zip(tokens, want["tags"]):
            colours.setdefault(tag, set()).add(t.value_of_css_property("background-color"))
        assert all(len(c) == 1 for c in colours.values())  # one colour per tag ...
        if len(colours) > 1:  # ... and different tags look different
            assert len({next(iter(c)) for c in colours.values()}) == len(colours)
