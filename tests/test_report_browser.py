"""The evidence report in a real browser: Debian's Chromium driven by Playwright, the page opened from
file:// with every non-file request aborted (and counted). The transcript is a committed fixture made
by the real pipeline from samples/conversation.wav (tests/data/report/README.md says how), reported
here through the CLI against the real recording."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLES, run_cli

FIXTURE = ROOT / "tests" / "data" / "report" / "conversation.json"
AUDIO = SAMPLES / "conversation.wav"
CHROMIUM = os.environ.get("AUDIOTOOLS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _browser_or_skip():
    """Playwright and Chromium, or a one-line skip where no browser can be installed here."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]' (setup.sh does it)")
    if not Path(CHROMIUM).is_file():
        can_install = shutil.which("apt-get") is not None and os.geteuid() == 0
        if can_install:
            pytest.fail(f"{CHROMIUM} missing: run setup.sh (apt-get install chromium)")
        pytest.skip("no Chromium and no way to install one here (needs apt-get as root): browser tests not run")
    return sync_playwright


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The fixture transcript and a copy with one word edited, each with its report (through the CLI)."""
    d = tmp_path_factory.mktemp("report")
    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    good = d / "conversation.json"
    good.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    edited = json.loads(json.dumps(doc))
    w = edited["segments"][1]["words"][0]
    w["word"] = " Banks"  # one word changed after the transcript was sealed
    bad = d / "edited.json"
    bad.write_text(json.dumps(edited, ensure_ascii=False, indent=2), encoding="utf-8")
    for src in (good, bad):
        r = run_cli("report", str(src), "--audio", str(AUDIO), "--case-id", "T-13", "--examiner", "Test Examiner")
        assert r.returncode == (0 if src == good else 1), r.stderr  # the edited one: integrity FAILED
    return {
        "doc": doc,
        "good": d / "conversation.report.html",
        "bad": d / "edited.report.html",
        "dir": d,
    }


class Page:
    """A page opened offline: non-file requests are aborted and recorded, console errors collected."""

    def __init__(self, browser, path: Path):
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.page.route("**/*", self._route)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_function("document.getElementById('audio').readyState >= 1")

    def _route(self, route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()


@pytest.fixture(scope="module")
def good_page(browser, reports):
    p = Page(browser, reports["good"])
    yield p
    p.page.close()


def test_loads_offline_without_network_or_console_errors(good_page):
    assert good_page.blocked == []
    assert good_page.errors == []
    # nothing in the file points outside it except the audio, by a relative path
    html = good_page.page.content()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert good_page.page.evaluate("document.getElementById('audio').getAttribute('src')") == os.path.relpath(
        AUDIO, good_page.page.url.removeprefix("file://").rsplit("/", 1)[0]
    )
    assert good_page.page.evaluate("document.getElementById('audio').duration") == pytest.approx(48.354, abs=0.01)


def test_integrity_ok_with_the_recording(good_page):
    banner = good_page.page.inner_text("#integrity-banner")
    assert banner.startswith("Integrity: OK"), banner
    statuses = dict(
        good_page.page.eval_on_selector_all(
            "tr.check", "rows => rows.map(r => [r.cells[0].innerText, r.cells[1].innerText])"
        )
    )
    for name in ("transcript_sha256", "source_sha256", "pcm_sha256", "segment sha256", "segments", "models"):
        assert statuses.get(name) == "OK", (name, statuses)


def test_every_speaker_and_every_word_is_shown(good_page, reports):
    doc = reports["doc"]
    page = good_page.page
    speakers = {s["speaker"] for s in doc["segments"]}
    lanes = set(page.eval_on_selector_all("#timeline g.lane", "gs => gs.map(g => g.dataset.speaker)"))
    assert speakers <= lanes
    rows = page.eval_on_selector_all("tr.speaker", "rs => rs.map(r => r.cells[0].innerText.trim())")
    assert sorted(rows) == sorted(doc["speakers"])
    words = [w["word"].strip() for s in doc["segments"] for w in s["words"]]
    shown = page.eval_on_selector_all("#transcript .w[data-s]", "ws => ws.map(w => w.innerText)")
    assert shown == words
    segs = page.eval_on_selector_all("#transcript .seg", "ss => ss.map(s => s.dataset.speaker)")
    assert segs == [s["speaker"] for s in doc["segments"]]


def test_masked_words_stay_masked_and_low_confidence_is_marked(good_page, reports):
    doc = reports["doc"]
    page = good_page.page
    masked = [w for s in doc["segments"] for w in s["words"] if w.get("masked")]
    assert masked, "the fixture was made with --mask-words (budget, library)"
    assert page.eval_on_selector_all(".w.m", "ws => ws.map(w => w.innerText)") == [w["word"].strip() for w in masked]
    text = page.inner_text("body").lower()
    assert "budget" not in text and "library" not in text
    assert "masking was applied" in page.inner_text("#transcript")
    low = [w for s in doc["segments"] for w in s["words"] if not w.get("masked") and w["probability"] < 0.5]
    assert page.eval_on_selector_all(".w.lc", "ws => ws.length") == len(low)


def test_clicking_a_word_seeks_the_audio_to_its_start(good_page, reports):
    page = good_page.page
    page.evaluate("document.getElementById('audio').muted = true")
    words = [w for s in reports["doc"]["segments"] for w in s["words"]]
    elements = page.query_selector_all("#transcript .w[data-s]")
    assert len(elements) == len(words)
    for k in (0, len(words) // 3, len(words) // 2, len(words) - 1):
        elements[k].scroll_into_view_if_needed()
        elements[k].click()
        t = page.evaluate("document.getElementById('audio').currentTime")
        assert abs(t - words[k]["start"]) <= 0.05, (words[k], t)
    page.evaluate("document.getElementById('audio').pause()")


def test_clicking_the_timeline_plays_from_there(good_page):
    page = good_page.page
    page.evaluate("document.getElementById('audio').muted = true")
    page.query_selector("#timeline").scroll_into_view_if_needed()
    box = page.query_selector("#timeline").bounding_box()
    x0, w, dur = page.evaluate(
        "(() => { const t = document.getElementById('timeline'); const m = t.getScreenCTM();"
        " return [m.e + m.a * parseFloat(t.dataset.x0), m.a * parseFloat(t.dataset.w),"
        " parseFloat(t.dataset.duration)] })()"
    )
    page.mouse.click(x0 + 0.75 * w, box["y"] + box["height"] / 2)
    t = page.evaluate("document.getElementById('audio').currentTime")
    assert abs(t - 0.75 * dur) < 0.2, t
    page.evaluate("document.getElementById('audio').pause()")


def test_print_layout_and_screenshot(good_page, tmp_path_factory):
    page = good_page.page
    out = tmp_path_factory.mktemp("report-artefacts")
    shot = out / "conversation.report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    page.emulate_media(media="print")
    assert page.evaluate("getComputedStyle(document.querySelector('.player')).display") == "none"
    pdf = page.pdf(format="A4")
    assert pdf[:5] == b"%PDF-" and pdf.count(b"/Type /Page") >= 2
    page.emulate_media(media="screen")
    print(f"screenshot: {shot}")


def test_an_edited_word_shows_integrity_failed(browser, reports):
    p = Page(browser, reports["bad"])
    try:
        assert p.blocked == [] and p.errors == []
        banner = p.page.inner_text("#integrity-banner")
        assert banner.startswith("Integrity: FAILED") and "transcript_sha256" in banner, banner
        row = p.page.eval_on_selector_all(
            "tr.check", "rs => rs.filter(r => r.cells[0].innerText === 'transcript_sha256').map(r => r.innerText)"
        )
        assert len(row) == 1 and "FAILED" in row[0] and "document was changed" in row[0]
        # the audio itself is untouched: its checks still pass, so the report shows *what* failed
        ok = p.page.eval_on_selector_all(
            "tr.check", "rs => rs.filter(r => r.cells[1].innerText === 'OK').map(r => r.cells[0].innerText)"
        )
        assert "source_sha256" in ok and "pcm_sha256" in ok
        assert "Banks" in p.page.inner_text("#transcript")
    finally:
        p.page.close()


def test_chromium_is_debian_s(browser):
    """The browser under test is the system Chromium (Playwright's own download cannot work offline)."""
    out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=False)
    assert "Chromium" in out.stdout and browser.version.split(".")[0] in out.stdout


def test_embedded_audio_plays_from_the_page(browser, reports, tmp_path):
    out = tmp_path / "embedded.report.html"
    r = run_cli(
        "report", str(reports["dir"] / "conversation.json"), "--audio", str(AUDIO), "--embed-audio", "-o", str(out)
    )
    assert r.returncode == 0, r.stderr
    p = Page(browser, out)
    try:
        assert p.blocked == [] and p.errors == []
        assert p.page.evaluate("document.getElementById('audio').src.startsWith('data:audio/wav;base64,')")
        assert p.page.evaluate("document.getElementById('audio').duration") == pytest.approx(48.354, abs=0.01)
    finally:
        p.page.close()
