"""What the evidence report says, against what the commands decided: verify names no identity,
identify shows its posteriors, hashes with nothing to compare with are information (not passed
checks), every model used is listed, likelihood ratios at the calibration's bound say so, and
the page shows file names, not local folders. Real runs of the CLI on samples/conversation.wav
with the demo store voiceprints/."""

from __future__ import annotations

import json
import re
import shutil
from html import unescape

import pytest

from tests.conftest import ROOT, SAMPLES, run_cli

AUDIO = SAMPLES / "conversation.wav"
STORE = ROOT / "voiceprints"
FIXTURE = ROOT / "tests" / "data" / "report" / "conversation.json"


def _checks(html: str) -> dict[str, tuple[str, str]]:
    rows = re.findall(
        r"<tr class='check' data-status='(\w+)'><td>([^<]*)</td><td[^>]*>[^<]*</td><td class='mono'>([^<]*)</td>", html
    )
    return {name: (status, detail) for status, name, detail in rows}


def _section(html: str, sid: str) -> str:
    return html.split(f"<section id='{sid}'>")[1].split("</section>")[0]


def _speaker_rows(html: str) -> dict[str, list[str]]:
    """speaker label -> the text of each cell of its row in the Speakers table."""
    out = {}
    for row in re.findall(r"<tr class='speaker'[^>]*>(.*?)</tr>", _section(html, "speakers"), re.S):
        cells = [unescape(re.sub(r"<[^>]+>", " ", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        out[cells[0]] = cells
    return out


def _header_row(html: str) -> str:
    return re.sub(r"<[^>]+>", "", _section(html, "speakers").split("</tr>")[0])


@pytest.fixture(scope="module")
def verify_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vf")
    r = run_cli(
        "verify", str(AUDIO), "--speaker", "Boris", "--voiceprints", str(STORE), "--json", "--report",
        "--report-dir", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), (out / "conversation.report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def identify_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("id")
    r = run_cli("identify", str(AUDIO), "--voiceprints", str(STORE), "--json", "--report", "--report-dir", str(out))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), (out / "conversation.report.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------- 1. verify decides nothing
def test_verify_report_names_no_identity_and_no_decision(verify_run):
    res, html = verify_run
    head = _header_row(html)
    assert "identity" not in head and "decision" not in head
    assert "log10 LR" in head and "verbal scale" in head and "best match" in head
    rows = _speaker_rows(html)
    assert set(rows) == {u["speaker"] for u in res["units"]}
    assert "<b>Boris</b>" not in _section(html, "speakers")  # no identity asserted in bold
    for u in res["units"]:
        cells = rows[u["speaker"]]
        assert f"{u['llr']:+.2f}" in cells and cells[4].startswith(u["support"])
        assert ("best match (highest LR)" in cells) == (u["speaker"] == res["best"])
    assert res["best"] == "SPEAKER_01"
    assert f"The best match is <b>{res['best']}</b>" in html and "not an identification" in html


def test_identify_report_keeps_its_identities_and_decisions(identify_run):
    res, html = identify_run
    head = _header_row(html)
    assert "identity" in head and "decision" in head and "posterior" in head
    rows = _speaker_rows(html)
    for lab, c in res["candidates"].items():
        idt = res["identities"].get(lab)
        assert rows[lab][1] == (idt["name"] if idt else "unknown")
        assert rows[lab][7] == c["decision"]


# ------------------------------------------------------------------------------- 2. integrity and models
def test_hashes_with_nothing_to_compare_are_information_not_passed_checks(verify_run, identify_run):
    res, html = verify_run
    checks = _checks(html)
    status, detail = checks["questioned recording sha256"]
    assert status == "info" and res["recording"]["sha256"] in detail and "no hash was recorded" in detail
    assert checks["voiceprint record"][0] == "ok"  # the store's embeddings hash: a real comparison
    n_ok = sum(1 for s, _ in checks.values() if s == "ok")
    assert f"Integrity: OK: {n_ok} check(s) passed" in html and n_ok == 1

    res, html = identify_run
    checks = _checks(html)
    status, detail = checks["recording sha256"]
    assert status == "info" and "no hash was recorded" in detail and "OK" not in detail
    assert checks["voiceprints"][0] == "ok"
    assert "Integrity: OK: 1 check(s) passed" in html


def test_a_recording_changed_during_the_run_fails(verify_run, tmp_path):
    from audiotools.report import build

    res, _ = verify_run
    copy = tmp_path / "conversation.wav"
    shutil.copyfile(AUDIO, copy)
    res = json.loads(json.dumps(res))
    res["recording"]["path"] = str(copy)
    res["recording"]["sha256"] = "0" * 64  # what the comparison read is not what the file holds now
    model = build.from_verification(res, report_path=tmp_path / "r.html")
    row = next(c for c in model["integrity"]["checks"] if c["name"] == "questioned recording sha256")
    assert row["status"] == "fail" and "changed during this run" in row["detail"]
    assert not model["integrity"]["ok"] and model["integrity"]["failed"] == ["questioned recording sha256"]
    assert str(tmp_path) not in row["detail"]


def test_every_model_used_is_listed(verify_run, identify_run):
    from audiotools.weights import CAMPLUS, SEGMENTATION, SILERO_VAD

    for _, html in (verify_run, identify_run):
        models = _section(html, "integrity").split("<h3>Models</h3>")[1]
        for w in (CAMPLUS, SEGMENTATION, SILERO_VAD):
            assert w.name in models and w.sha256 in models
        assert models.count(CAMPLUS.sha256) == 1  # the comparison's and the diariser's CAM++: one row


def test_models_follow_where_the_turns_came_from():
    from audiotools.report.build import speaker_models
    from audiotools.weights import SEGMENTATION

    given = speaker_models("campplus-cn-en-common-192", "abc", False)  # turns from an RTTM
    assert [m["role"] for m in given] == ["speaker-embedding", "vad"]
    record = {"backend": "builtin", "models": [{"role": "diarization.segmentation", "name": "seg", "sha256": "x"}]}
    ran = speaker_models("campplus-cn-en-common-192", "abc", record)
    assert ran[-1] == {"role": "diarization.segmentation", "name": "seg", "sha256": "x"}
    unsaid = speaker_models("campplus-cn-en-common-192", "abc", None)
    seg = next(m for m in unsaid if m["name"] == SEGMENTATION.name)
    assert seg["sha256"] == SEGMENTATION.sha256 and "--rttm" in seg["role"]


# ------------------------------------------------------------------------------- 3. posteriors
def test_identify_report_shows_every_posterior(identify_run):
    res, html = identify_run
    rows = _speaker_rows(html)
    posteriors = {lab: c["posterior"] for lab, c in res["candidates"].items()}
    assert sorted(round(p, 3) for p in posteriors.values()) == [0.444, 0.967, 0.981]
    for lab, p in posteriors.items():
        assert rows[lab][6] == f"{p:.3f}"  # the named speakers and the unnamed one alike


def test_transcript_report_shows_the_posteriors(tmp_path):
    p = tmp_path / "conversation.json"
    shutil.copyfile(FIXTURE, p)
    r = run_cli("report", str(p), "--audio", str(AUDIO))
    assert r.returncode == 0, r.stderr
    html = p.with_name("conversation.report.html").read_text(encoding="utf-8")
    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    rows = _speaker_rows(html)
    for lab, info in doc["speakers"].items():
        assert rows[lab][6] == f"{info['voiceprint_match']['posterior']:.3f}"


# ------------------------------------------------------------------------------- 4. the calibration's bound
def test_at_bound():
    from audiotools.report.build import at_bound

    assert at_bound(-1.959, [-1.959, 3.913]) == "lower" and at_bound(-1.96, [-1.9587, 3.913]) == "lower"
    assert at_bound(3.913, [-1.959, 3.913]) == "upper"
    assert at_bound(-1.9, [-1.959, 3.913]) is None and at_bound(None, [-1.959, 3.913]) is None
    assert at_bound(-1.959, None) is None


def test_likelihood_ratios_at_the_bound_say_so_wherever_shown(verify_run):
    res, html = verify_run
    html = unescape(html)
    low = res["method"]["llr_bounds"][0]
    at = [u for u in res["units"] if u.get("scored") and abs(u["llr"] - low) < 0.0015]
    inside = [u for u in res["units"] if u.get("scored") and abs(u["llr"] - low) >= 0.0015]
    assert {u["speaker"] for u in at} == {"SPEAKER_00", "SPEAKER_02"} and inside
    rows = _speaker_rows(html)
    for u in at:
        assert "at the calibration's lower bound" in rows[u["speaker"]][4]
        assert f"{u['speaker']}: log10 LR {u['llr']:+.3f} is at the calibration's lower bound" in html
    for u in inside:
        assert "bound" not in rows[u["speaker"]][4]
    comps = dict(re.findall(r"<h3>(\w+) compared with Boris</h3>(.*?)</div>", _section(html, "comparison"), re.S))
    for u in at:
        c = comps[u["speaker"]]
        assert "LR</th><td class='num'>≤ 1/91" in c and "The true LR may be smaller still" in c
        turns = [t for t in u["segments"] if abs(t["llr"] - low) < 0.0015]
        assert turns and c.count("(at bound)") == len(turns)
    for u in inside:
        c = comps[u["speaker"]]
        assert "≤" not in c.split("<details>")[0] and "at the calibration's" not in c


def test_one_likelihood_ratio_has_one_figure(verify_run):
    """A bound-clipped LR is flagged in the JSON and written the same way everywhere in the report:
    the LR cell, the verbal statement and the bound note (not three roundings of one number)."""
    res, html = verify_run
    html = unescape(html)
    comps = dict(re.findall(r"<h3>(\w+) compared with Boris</h3>(.*?)</div>", _section(html, "comparison"), re.S))
    for u in (u for u in res["units"] if u.get("scored")):
        c = comps[u["speaker"]].split("<details>")[0]
        low = u["llr"] <= res["method"]["llr_bounds"][0] + 0.0015
        assert u["llr_clipped"] == low and u["llr_bound"] == ("lower" if low else None)
        assert f"LR</th><td class='num'>{u['lr_text']}</td>" in c
        figures = set(re.findall(r"LR [≈≤≥] (1/[\d,.]*\d|[\d,.]*\d)", c))
        assert figures == {re.sub("^[≤≥] ", "", u["lr_text"])}, figures
        if low:
            assert f"LR {u['lr_text']}, the calibration's lower bound" in c and u["lr_text"].startswith("≤ 1/")


def test_recording_snr_is_the_gate_figure(tmp_path):
    """The Recording section's SNR is measured as the quality gate measures (VAD speech of the
    compared regions): with the whole recording as one unit it is the gate's own figure."""
    r = run_cli(
        "verify", str(AUDIO), "--speaker", "Boris", "--voiceprints", str(STORE), "--no-diarize", "--json",
        "--report", "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    gate = json.loads(r.stdout)["units"][0]["quality"]["snr_db"]
    rec = unescape(_section((tmp_path / "conversation.report.html").read_text(encoding="utf-8"), "recording"))
    assert f"{gate:.1f} dB over the voice-activity speech in the compared speakers' regions" in rec


# ------------------------------------------------------------------------------- 5. no local folders
def test_reports_show_file_names_not_local_paths(verify_run, identify_run, tmp_path):
    for _, html in (verify_run, identify_run):
        for _status, detail in _checks(html).values():
            assert str(ROOT) not in detail and str(STORE) not in detail
        rec = _section(html, "recording")
        assert "<td>conversation.wav</td>" in rec and str(SAMPLES) not in rec
        assert str(STORE) not in _section(html, "comparison") and str(STORE) not in _section(html, "speakers")
    p = tmp_path / "case" / "conversation.json"
    p.parent.mkdir()
    shutil.copyfile(FIXTURE, p)
    r = run_cli("report", str(p), "--audio", str(AUDIO), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    header = html.split("</header>")[0]
    assert "transcript file: <b>conversation.json</b>" in header and str(tmp_path) not in header


def test_batch_index_shows_file_names(tmp_path):
    from audiotools.batch.plan import FileRecord
    from audiotools.report.batch import write_batch_reports

    src = tmp_path / "secret-folder" / "broken.wav"
    out = tmp_path / "out"
    out.mkdir()
    rec = FileRecord(input=str(src), status="failed", error=f"{src}: cannot decode")
    index = write_batch_reports([rec], out).read_text(encoding="utf-8")
    assert "secret-folder" not in index and str(tmp_path) not in index
    assert "broken.wav</td><td>failed</td>" in index and "broken.wav: cannot decode" in index
