"""The evidence report without a browser: the CLI, integrity re-verification against changed audio,
embedded audio and its size limit, the stored calibration trials, verify --report with its Tippett
and ECE plots, and batch --reports with its index. Browser behaviour: tests/test_report_browser.py."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import JFK, ROOT, SAMPLES, run_cli

FIXTURE = ROOT / "tests" / "data" / "report" / "conversation.json"
AUDIO = SAMPLES / "conversation.wav"


@pytest.fixture()
def transcript(tmp_path) -> Path:
    p = tmp_path / "conversation.json"
    shutil.copyfile(FIXTURE, p)
    return p


def _checks(html: str) -> dict[str, str]:
    rows = re.findall(r"<tr class='check' data-status='(\w+)'><td>([^<]*)</td>", html)
    return {name: status for status, name in rows}


def test_report_cli_writes_beside_the_json_and_names_the_case(transcript):
    r = run_cli("report", str(transcript), "--audio", str(AUDIO), "--case-id", "K-7", "--examiner", "A. Nne")
    assert r.returncode == 0, r.stderr
    out = transcript.with_name("conversation.report.html")
    html = out.read_text(encoding="utf-8")
    assert "K-7" in html and "A. Nne" in html
    checks = _checks(html)
    assert checks["transcript_sha256"] == "ok" and checks["pcm_sha256"] == "ok" and checks["segment sha256"] == "ok"
    assert "<script src" not in html and "<link" not in html and "@import" not in html and "@font-face" not in html


def test_an_edited_text_with_its_hash_recomputed_is_shown_and_flagged(transcript):
    """Anyone can edit an unsigned transcript and recompute its hash: every check then passes. The page
    says the transcript is not authenticated, shows the edited text (what the exports and quotes use),
    not the untouched words, and flags the segment whose text no longer matches its words."""
    from audiotools.provenance.document import transcript_sha256

    doc = json.loads(transcript.read_text(encoding="utf-8"))
    seg = doc["segments"][1]
    original = "".join(w["word"] for w in seg["words"]).strip()
    seg["text"] = " Thanks for NOT having me, <b>Anna</b>."
    doc["provenance"]["transcript_sha256"] = transcript_sha256(doc)
    transcript.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    r = run_cli("report", str(transcript), "--audio", str(AUDIO))
    assert r.returncode == 0, r.stderr  # every recorded hash matches: nothing FAILED
    html = transcript.with_name("conversation.report.html").read_text(encoding="utf-8")
    assert '<div class="banner warn" id="integrity-banner">Integrity: OK, NOT AUTHENTICATED: ' in html
    assert "Thanks for NOT having me, &lt;b&gt;Anna&lt;/b&gt;." in html and "<b>Anna</b>" not in html
    assert f"text differs from its words, which say: “{original}”" in html
    assert "1 segment(s) have a text that differs from their words" in html


def test_the_transcripts_warnings_are_among_the_reports_limitations(transcript):
    """A warning the pipeline recorded (here the diariser's little-speech one) reaches the reader.
    The warnings are part of the hashed transcript, so adding one afterwards, as here, fails
    transcript_sha256: a warning cannot be dropped or added unnoticed."""
    doc = json.loads(transcript.read_text(encoding="utf-8"))
    warning = "diarisation: SPEAKER_02 3.1 s of speech: a speaker with under 5 s may be ..."
    doc["warnings"] = [warning]
    transcript.write_text(json.dumps(doc), encoding="utf-8")
    r = run_cli("report", str(transcript), "--audio", str(AUDIO))
    # the report is written and the command says the transcript changed: exit 1, one line
    assert r.returncode == 1 and "integrity FAILED: transcript_sha256" in r.stderr, r.stderr
    html = transcript.with_name("conversation.report.html").read_text(encoding="utf-8")
    limitations = html.split("<section id='limitations'>")[1].split("</section>")[0]
    assert f"Recorded when the transcript was made: {warning}" in limitations
    assert _checks(html)["transcript_sha256"] == "fail"


def test_missing_transcript_is_one_line_naming_the_file(tmp_path):
    r = run_cli("report", str(tmp_path / "nope.json"))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope.json" in lines[0] and "no such file" in lines[0]


def test_not_a_transcript_is_refused(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"hello": 1}', encoding="utf-8")
    r = run_cli("report", str(p))
    assert r.returncode == 1 and "x.json" in r.stderr and "not an audiotools transcript" in r.stderr


def test_changed_audio_fails_source_pcm_and_one_segment(transcript, tmp_path):
    """One sample changed inside segment 3: the source, PCM and that segment's hashes fail, the others pass."""
    import soundfile as sf

    doc = json.loads(transcript.read_text(encoding="utf-8"))
    x, sr = sf.read(AUDIO, dtype="int16")
    seg = doc["segments"][3]
    k = int((seg["start"] + seg["end"]) / 2 * sr)
    x[k] = x[k] + 1000 if x[k] < 0 else x[k] - 1000
    changed = tmp_path / "changed.wav"
    sf.write(changed, x, sr, subtype="PCM_16")
    from audiotools.report import report_for_transcript

    html = report_for_transcript(transcript, audio=changed).read_text(encoding="utf-8")
    checks = _checks(html)
    assert checks["source_sha256"] == "fail" and checks["pcm_sha256"] == "fail"
    assert checks[f"segment {seg['id']} sha256"] == "fail"
    assert checks["transcript_sha256"] == "ok"
    assert f"{len(doc['segments']) - 1} segment(s) match" in html
    assert "Integrity: FAILED" in html


def test_embedded_audio_and_its_limit(transcript, monkeypatch):
    from audiotools.errors import InputError
    from audiotools.report import build, report_for_transcript

    out = report_for_transcript(transcript, audio=AUDIO, embed_audio=True)
    html = out.read_text(encoding="utf-8")
    m = re.search(r"src='data:audio/wav;base64,([A-Za-z0-9+/=]+)'", html)
    import base64

    assert m and base64.b64decode(m.group(1)) == AUDIO.read_bytes()
    monkeypatch.setattr(build, "EMBED_AUDIO_LIMIT_MB", 1)
    with pytest.raises(InputError, match=r"conversation\.wav: .* too large to embed"):
        report_for_transcript(transcript, audio=AUDIO, embed_audio=True)


def test_without_audio_the_report_says_what_was_not_checked(transcript, monkeypatch, tmp_path):
    from audiotools.report import report_for_transcript

    monkeypatch.chdir(tmp_path)  # the recorded path samples/conversation.wav does not resolve here
    html = report_for_transcript(transcript).read_text(encoding="utf-8")
    checks = _checks(html)
    assert checks["transcript_sha256"] == "ok" and checks["audio"] == "skip"
    assert "no audio file was found" in html and "<audio" not in html


def test_stored_calibration_trials_match_the_shipped_calibration():
    from audiotools.report.build import CALIBRATION_FILE, TRIALS_FILE, calibration_trials
    from audiotools.speakers.calibration import cllr

    cal = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    trials = json.loads(TRIALS_FILE.read_text(encoding="utf-8"))
    assert trials["model"]["weights_sha256"] == cal["model"]["weights_sha256"]
    for cond, c in cal["conditions"].items():
        tar, non, meta = calibration_trials(cond, "shipped")
        assert (len(tar), len(non)) == (c["trials"]["target"], c["trials"]["nontarget"])
        # the held-out Cllr recorded with the calibration, from the stored (0.01-rounded) values
        assert cllr(tar, non) == pytest.approx(c["held_out"]["cllr"], abs=0.002)
        assert np.all(np.diff(np.array([v for v, _ in trials["conditions"][cond]["target"]])) > 0)
    assert calibration_trials("wideband", "voiceprints/_calibration.json") is None


def test_verify_report_has_propositions_and_calibration_plots(tmp_path):
    r = run_cli(
        "verify",
        str(AUDIO),
        "--reference",
        str(SAMPLES / "voices" / "boris.wav"),
        "--rttm",
        str(SAMPLES / "conversation.rttm"),
        "--report",
        "--report-dir",
        str(tmp_path),
        "--case-id",
        "V-1",
    )
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "conversation.report.html").read_text(encoding="utf-8")
    assert "H1</b>: the speech of Boris was spoken by the speaker of boris.wav" in html
    assert "shipped calibration" in html and "LibriSpeech" in html
    scored = html.count("<h3>Limitations of this comparison</h3>")
    assert scored == 3  # Anna, Boris and Clara of the RTTM, each compared with boris.wav
    assert html.count("<svg") >= 1 + 2  # the timeline, and a Tippett and an ECE plot per scored speaker
    assert "this case: " in html and "empirical cross-entropy" in html and "proportion of trials" in html
    assert "A likelihood ratio, not proof of identity." in html
    # hashed for this report, with nothing recorded earlier to compare them with: information, not a check
    assert _checks(html)["questioned recording sha256"] == "info"
    assert _checks(html)["reference boris.wav sha256"] == "info"


def test_a_store_calibration_gets_no_plots_and_says_why(transcript):
    """The fixture's identities are calibrated by the demo store's refit: its trials are not stored."""
    from audiotools.report import report_for_transcript

    html = report_for_transcript(transcript, audio=AUDIO).read_text(encoding="utf-8")
    assert "compared with the voiceprint of" in html
    assert "no Tippett or ECE plot is shown" in html
    assert "empirical cross-entropy" not in html


def test_batch_reports_and_index(tmp_path):
    bad = tmp_path / "in" / "broken.wav"
    bad.parent.mkdir()
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    shutil.copyfile(JFK, tmp_path / "in" / "jfk.flac")
    out = tmp_path / "out"
    r = run_cli(
        "batch",
        str(tmp_path / "in"),
        "--output-dir",
        str(out),
        "--model",
        "tiny.en",
        "--no-diarize",
        "--workers",
        "0",
        "--reports",
        "-f",
        "json",
    )
    assert r.returncode == 1, r.stderr  # one file failed
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "<a href='jfk.report.html'>" in index
    assert re.search(r"broken\.wav</td><td>failed</td>", index)
    assert "1 ok, 1 failed" in index
    report = (out / "jfk.report.html").read_text(encoding="utf-8")
    assert "Integrity: OK" in report
    assert "ask not what your country can do for you" in re.sub(r"<[^>]+>", "", report)


def test_transcribe_report_beside_the_json(tmp_path):
    r = run_cli(
        "transcribe", str(JFK), "-o", str(tmp_path), "--model", "tiny.en", "--no-diarize", "-f", "json,srt", "--report"
    )
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "jfk.report.html").read_text(encoding="utf-8")
    checks = _checks(html)
    # made right after the exports: the JSON, the audio it was made from and the SRT beside it all check out
    assert checks["transcript_sha256"] == "ok" and checks["pcm_sha256"] == "ok"
    assert checks["export jfk.srt: content"] == "ok"
    assert "Integrity: OK, NOT AUTHENTICATED" in html and "the transcript is not signed" in html
    assert "No voiceprints were compared" in html


def test_identify_report_names_the_store_calibration(tmp_path):
    r = run_cli(
        "identify",
        str(AUDIO),
        "--voiceprints",
        str(ROOT / "voiceprints"),
        "--rttm",
        str(SAMPLES / "conversation.rttm"),
        "--report",
        "--report-dir",
        str(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "conversation.report.html").read_text(encoding="utf-8")
    assert "Boris compared with the voiceprint of Boris" in html
    assert "_calibration.json" in html and "in sample" in html
    lanes = re.findall(r"<g class='lane' data-speaker='([^']+)'>", html)
    assert sorted(lanes) == ["Anna", "Boris", "Clara"]


def test_signed_transcript_shows_the_key_fingerprint(transcript, tmp_path):
    key = tmp_path / "court"
    assert run_cli("provenance", "keygen", "--output", str(key)).returncode == 0
    assert run_cli("provenance", "sign", str(transcript), "--key", f"{key}.key").returncode == 0
    key_id = json.loads(transcript.read_text(encoding="utf-8"))["provenance"]["signature"]["key_id"]
    r = run_cli("report", str(transcript), "--audio", str(AUDIO), "--public-key", f"{key}.pub")
    assert r.returncode == 0, r.stderr
    html = transcript.with_name("conversation.report.html").read_text(encoding="utf-8")
    assert _checks(html)["signature"] == "ok" and f"key fingerprint <code>{key_id}</code>" in html
    assert '<div class="banner ok" id="integrity-banner">Integrity: OK: ' in html
    assert "signed by the trusted key when this report was made" in html
    # the same signed transcript without the key to check it against: intact, not authenticated
    r = run_cli("report", str(transcript), "--audio", str(AUDIO), "-o", str(tmp_path / "u.html"))
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "u.html").read_text(encoding="utf-8")
    assert '<div class="banner warn" id="integrity-banner">Integrity: OK, NOT AUTHENTICATED: ' in html
    assert "signed by a key nobody vouched for" in html
    other = tmp_path / "other"
    assert run_cli("provenance", "keygen", "--output", str(other)).returncode == 0
    r = run_cli(
        "report", str(transcript), "--audio", str(AUDIO), "--public-key", f"{other}.pub", "-o", str(tmp_path / "o.html")
    )
    assert r.returncode == 1 and "integrity FAILED: signature" in r.stderr, r.stderr
    html = (tmp_path / "o.html").read_text(encoding="utf-8")
    assert _checks(html)["signature"] == "fail" and "Integrity: FAILED: signature" in html
