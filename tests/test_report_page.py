"""The report page beyond its content, in Debian's Chromium (fixtures of tests/test_report_browser.py):
printing unfolds every <details>, the seek targets work from the keyboard, the page fits a phone's
width and a recording that cannot be found says so beside the player."""

from __future__ import annotations

import shutil

import pytest

from tests import test_report_browser as rb
from tests.conftest import SAMPLES, run_cli

browser = rb.browser  # the module-scoped Chromium of the browser tests, shared here


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The report of the committed real transcript, with its recording (through the CLI)."""
    d = tmp_path_factory.mktemp("report")
    shutil.copyfile(rb.FIXTURE, d / "conversation.json")
    r = run_cli("report", str(d / "conversation.json"), "--audio", str(rb.AUDIO))
    assert r.returncode == 0, r.stderr
    return {"good": d / "conversation.report.html"}


@pytest.fixture(scope="module")
def verify_report(tmp_path_factory):
    """A verify report: three comparisons, each with its folded 'Evidence by turn' table."""
    d = tmp_path_factory.mktemp("verify-report")
    r = run_cli(
        "verify",
        str(rb.AUDIO),
        "--reference",
        str(SAMPLES / "voices" / "boris.wav"),
        "--rttm",
        str(SAMPLES / "conversation.rttm"),
        "--report",
        "--report-dir",
        str(d),
    )
    assert r.returncode == 0, r.stderr
    return d / "conversation.report.html"


@pytest.fixture()
def page_of(browser):
    opened = []

    def open_(path, width=1200, height=900):
        p = rb.Page.__new__(rb.Page)  # the offline page of the browser tests, at a chosen viewport
        p.blocked, p.errors = [], []
        p.page = browser.new_page(viewport={"width": width, "height": height})
        p.page.route("**/*", p._route)
        p.page.on("console", lambda m: m.type == "error" and p.errors.append(m.text))
        p.page.on("pageerror", lambda e: p.errors.append(str(e)))
        p.page.goto(path.resolve().as_uri())
        opened.append(p.page)
        return p

    yield open_
    for pg in opened:
        pg.close()


def _report(request, which):
    """The report named by a parameter; the verify one is made only when a test asks for it."""
    return request.getfixturevalue("reports")["good"] if which == "good" else request.getfixturevalue("verify_report")


def _ready(p):
    p.page.wait_for_function("document.getElementById('audio').readyState >= 1")
    p.page.evaluate("document.getElementById('audio').muted = true")
    return p.page


def _current(page) -> float:
    return page.evaluate("document.getElementById('audio').currentTime")


# ------------------------------------------------------------------------------------------- print
@pytest.mark.parametrize("which", ["good", "verify"])
def test_printing_shows_every_folded_block_and_folds_them_again(page_of, request, which):
    page = _ready(page_of(_report(request, which)))
    n = page.evaluate("document.querySelectorAll('details').length")
    assert n == (1 if which == "good" else 4)  # Parameters; and the evidence by turn of each comparison
    visible = "[...document.querySelectorAll('details')].map(d => d.lastElementChild.checkVisibility())"
    assert page.evaluate(visible) == [False] * n  # folded on screen
    # print CSS alone (no script event) shows the folded content
    page.emulate_media(media="print")
    assert page.evaluate(visible) == [True] * n
    page.emulate_media(media="screen")
    # printing (page.pdf fires beforeprint/afterprint in Chromium) opens them, then restores the fold
    page.evaluate(
        "window.__printed = null; window.addEventListener('beforeprint', () => { window.__printed ="
        " [...document.querySelectorAll('details')].map(d => d.open && d.lastElementChild.checkVisibility()) })"
    )
    pdf = page.pdf(format="A4")
    assert pdf[:5] == b"%PDF-"
    assert page.evaluate("window.__printed") == [True] * n
    assert page.evaluate("[...document.querySelectorAll('details')].map(d => d.open)") == [False] * n
    # one the reader opened stays open after printing
    page.evaluate("document.querySelector('details').open = true")
    page.evaluate("window.dispatchEvent(new Event('beforeprint')); window.dispatchEvent(new Event('afterprint'))")
    assert page.evaluate("document.querySelector('details').open")


# ---------------------------------------------------------------------------------------- keyboard
def test_timestamps_are_buttons_reached_by_tab_and_played_by_enter_or_space(page_of, reports):
    page = _ready(page_of(reports["good"]))
    stamps = page.query_selector_all("#transcript .ts[data-s]")
    assert stamps and all(s.get_attribute("tabindex") == "0" and s.get_attribute("role") == "button" for s in stamps)
    assert page.evaluate("document.querySelectorAll('.w[data-s][tabindex]').length") == 0  # words: mouse only
    # Tab from the top reaches the first timestamp (past the player, the Parameters and the timeline)
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('.ts[data-s]')"):
            break
    else:
        pytest.fail("Tab never reached a transcript timestamp")
    assert page.evaluate("document.activeElement") == page.evaluate("document.querySelector('.ts[data-s]')")
    for key, k in (("Enter", len(stamps) // 2), ("Space", len(stamps) - 1)):
        stamps[k].focus()
        page.keyboard.press(key)
        assert _current(page) == pytest.approx(float(stamps[k].get_attribute("data-s")), abs=0.05), key
    page.evaluate("document.getElementById('audio').pause()")
    for sel in ("#transcript .w[data-s]", "#transcript .ts[data-s]", "#timeline"):
        assert page.eval_on_selector(sel, "e => getComputedStyle(e).cursor") == "pointer", sel


def test_the_timeline_is_a_slider_for_the_keyboard(page_of, reports):
    page = _ready(page_of(reports["good"]))
    tl = page.query_selector("#timeline")
    assert tl.get_attribute("role") == "slider" and tl.get_attribute("tabindex") == "0"
    tl.focus()
    page.keyboard.press("End")
    assert _current(page) == pytest.approx(48.354, abs=0.1)
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert _current(page) == pytest.approx(10.0, abs=0.05)
    page.keyboard.press("ArrowLeft")
    assert _current(page) == pytest.approx(5.0, abs=0.05)
    for _ in range(40):  # the slider's value follows the audio (timeupdate); polled here, the page forbids eval
        if tl.get_attribute("aria-valuenow") == "5.0":
            break
        page.wait_for_timeout(50)
    assert tl.get_attribute("aria-valuenow") == "5.0" and tl.get_attribute("aria-valuetext") == "0:05.0"


def test_evidence_turns_are_keyboard_buttons(page_of, verify_report):
    page = _ready(page_of(verify_report))
    cells = page.query_selector_all("#comparison td[data-s]")
    assert len(cells) >= 3
    assert all(c.get_attribute("tabindex") == "0" and c.get_attribute("role") == "button" for c in cells)
    assert cells[0].evaluate("e => getComputedStyle(e).cursor") == "pointer"
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    cells[-1].focus()
    page.keyboard.press("Enter")
    assert _current(page) == pytest.approx(float(cells[-1].get_attribute("data-s")), abs=0.05)
    page.evaluate("document.getElementById('audio').pause()")


# ----------------------------------------------------------------------------------------- phone
@pytest.mark.parametrize("which", ["good", "verify"])
def test_a_phone_width_page_does_not_overflow(page_of, request, which):
    p = page_of(_report(request, which), width=375, height=740)
    page = _ready(p)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    # the wide tables scroll inside the page instead
    wide = page.evaluate("document.querySelector('#speakers table, #comparison table')")
    assert wide is not None
    assert page.eval_on_selector("#speakers table", "t => getComputedStyle(t).overflowX") == "auto"
    player = page.eval_on_selector(".player", "e => e.offsetHeight")
    assert player <= 80, player
    # a jump to a section stops below the sticky player
    for section in ("speakers", "comparison", "limitations"):
        page.evaluate(f"location.hash = '#{section}'")
        top = page.eval_on_selector(f"#{section} h2", "h => h.getBoundingClientRect().top")
        bottom = page.eval_on_selector(".player", "e => e.getBoundingClientRect().bottom")
        assert top >= bottom - 1, (section, top, bottom)
    assert p.errors == []


# ------------------------------------------------------------------------------------ missing audio
def test_a_moved_report_says_where_it_looked_for_the_recording(page_of, reports, tmp_path):
    moved = tmp_path / "elsewhere" / "deeper"
    moved.mkdir(parents=True)
    shutil.copyfile(reports["good"], moved / "conversation.report.html")
    p = page_of(moved / "conversation.report.html")
    page = p.page
    page.wait_for_selector("#audio-error", state="visible")
    src = page.evaluate("document.getElementById('audio').getAttribute('src')")
    msg = page.inner_text("#audio-error")
    assert msg.startswith(f"The recording was not found at {src}"), msg
    assert "(keep the report beside it, or make the report with --embed-audio)" in msg
    tried = (moved / src).resolve(strict=False)
    assert str(tried) in msg or tried.as_posix() in msg, msg
    # a click on a word keeps the message in view; no script error
    page.click("#transcript .w[data-s]")
    assert page.is_visible("#audio-error")
    assert p.blocked == [] and all("ERR_FILE_NOT_FOUND" in e for e in p.errors), p.errors


def test_a_report_beside_its_recording_shows_no_error(page_of, reports):
    p = page_of(reports["good"])
    _ready(p)
    assert not p.page.is_visible("#audio-error")
    assert p.page.is_visible(".player .note")
