"""Evidence report of a one-hour transcript: file size and render time in Chromium.

    python benchmarks/report.py            # -> benchmarks/results/report.json

The one-hour case is made from the committed real transcript of samples/conversation.wav
(tests/data/report/conversation.json): the recording is repeated until it lasts an hour (written to
benchmarks/work/report/hour.wav), the transcript's segments, words and speaker turns are repeated
with their times shifted, and the provenance block is rebuilt over the long recording (so every
hash in it is real and the report's integrity check runs on an hour of audio). Then:

* ``build``: seconds and peak memory of ``audiotools report`` in a child process (re-verification
  of every hash with the audio, waveform, condition, SNR) and the HTML size, audio not embedded
  (target: under 5 MB);
* ``render``: Chromium (/usr/bin/chromium via Playwright) opens the report from file:// with the
  network blocked; the figure is the navigation's ``loadEventEnd`` (parse, style, layout and the
  script's start-up) and the wall time until the page is painted, median of 3 fresh pages
  (target: under 2 s). A word near the end is clicked to check the page still responds.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import WORK, machine, write_result  # noqa: E402

FIXTURE = ROOT / "tests" / "data" / "report" / "conversation.json"
AUDIO = ROOT / "samples" / "conversation.wav"
HOUR = 3600.0


def make_hour(work: Path) -> tuple[Path, Path, int]:
    import math

    import numpy as np
    import soundfile as sf

    from audiotools.audio.decode import load_audio
    from audiotools.provenance.document import apply_provenance
    from audiotools.transcript import Transcript

    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    base = load_audio(AUDIO)
    n = math.ceil(HOUR / base.duration)
    period = len(base.samples) / 16000
    wav = work / "hour.wav"
    sf.write(wav, np.tile(base.samples, n), 16000, subtype="PCM_16")  # the source is 16-bit: exact
    t = Transcript.from_dict(json.loads(json.dumps(doc)))
    segs, turns = [], []
    for k in range(n):
        off = k * period
        for s in Transcript.from_dict(json.loads(json.dumps(doc))).segments:
            s.id = len(segs)
            s.start, s.end = s.start + off, s.end + off
            for w in s.words:
                w.start, w.end = w.start + off, w.end + off
            segs.append(s)
        for tr in doc["diarization"]["turns"]:
            turns.append({**tr, "start": round(tr["start"] + off, 3), "end": round(tr["end"] + off, 3)})
    t.segments = segs
    t.extra["diarization"]["turns"] = turns
    for info in t.speakers.values():
        info["duration"] = round(info["duration"] * n, 3)
        info["segments"] = info["segments"] * n
    decoded = load_audio(wav)
    t.audio.path, t.audio.sha256, t.audio.pcm_sha256 = str(wav), decoded.info.sha256, decoded.info.pcm_sha256
    t.audio.duration = round(decoded.duration, 3)
    t.extra.pop("provenance", None)
    apply_provenance(t, audio=decoded, parameters=doc.get("parameters"))
    out = work / "hour.json"
    out.write_text(t.to_json(), encoding="utf-8")
    return out, wav, sum(len(s.words) for s in segs)


def render_times(report: Path, runs: int = 3) -> dict:
    from playwright.sync_api import sync_playwright

    loads, painted, blocked, errors = [], [], [], []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for _ in range(runs):
            page = b.new_page(viewport={"width": 1200, "height": 900})
            page.route(
                "**/*",
                lambda r: (
                    r.continue_() if r.request.url.startswith("file:") else (blocked.append(r.request.url), r.abort())
                ),
            )
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            t0 = time.perf_counter()
            page.goto(report.resolve().as_uri(), wait_until="load")
            page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            painted.append(time.perf_counter() - t0)
            loads.append(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000)
            last = page.query_selector_all("#transcript .w[data-s]")[-1]
            last.scroll_into_view_if_needed()
            page.evaluate("document.getElementById('audio').muted = true")
            last.click()
            seek = page.evaluate("document.getElementById('audio').currentTime")
            want = float(last.get_attribute("data-s"))
            page.close()
        b.close()
    return {
        "load_event_s": [round(x, 3) for x in loads],
        "load_event_median_s": round(statistics.median(loads), 3),
        "painted_wall_s": [round(x, 3) for x in painted],
        "painted_wall_median_s": round(statistics.median(painted), 3),
        "last_word_click_seek_error_s": round(abs(seek - want), 3),
        "network_requests_attempted": blocked,
        "console_errors": errors,
    }


def main() -> int:
    work = WORK / "report"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    js, wav, n_words = make_hour(work)
    made = time.perf_counter() - t0
    # the CLI in a child process: its time and peak memory are the report's alone
    report = work / "hour.report.html"
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "audiotools", "report", str(js), "--audio", str(wav), "--output", str(report)],
        check=True,
        cwd=ROOT,
    )
    build_s = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    html = report.read_text(encoding="utf-8")
    doc = json.loads(js.read_text(encoding="utf-8"))
    result = {
        "transcript": {
            "duration_s": doc["audio"]["duration"],
            "segments": len(doc["segments"]),
            "words": n_words,
            "json_bytes": js.stat().st_size,
            "made_from": "tests/data/report/conversation.json repeated, times shifted, provenance rebuilt",
        },
        "build_s": round(build_s, 2),
        "build_peak_rss_mb": round(peak_mb),
        "report_bytes": report.stat().st_size,
        "report_mb": round(report.stat().st_size / 1e6, 2),
        "integrity_ok": "Integrity: OK" in html,
        "render": render_times(report),
        "targets": {"report_mb": "< 5 (audio not embedded)", "render_s": "< 2"},
        "preparation_s": round(made, 1),
        "machine": machine(),
    }
    r = result["render"]
    print(
        f"1 h transcript ({result['transcript']['segments']} segments, {n_words} words): report "
        f"{result['report_mb']} MB, built in {build_s:.1f} s (CLI, peak RSS {peak_mb:.0f} MB) "
        f"(integrity {'OK' if result['integrity_ok'] else 'FAILED'}); "
        f"Chromium load event {r['load_event_median_s']} s, painted {r['painted_wall_median_s']} s "
        f"(median of {len(r['load_event_s'])}); network requests {len(r['network_requests_attempted'])}, "
        f"console errors {len(r['console_errors'])}"
    )
    print(f"wrote {write_result('report', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
