"""Reliability figures (issue 16): hostile inputs, fuzzing, kills, empty-file rejection.

    python benchmarks/reliability.py                  # everything (about 5-10 min on 2 cores)
    python benchmarks/reliability.py --fuzz-seconds 60 --kills 20

- hostile inputs: ``tests/reliability_corpus.hostile_inputs`` (forged WAV/FLAC headers, many
  channels, truncations, non-files) decoded by ``load_audio`` in a child process: tried / crashed
  (killed by a signal or hung) / tracebacks (an exception type outside ``audiotools.errors``);
- fuzzing: seeded mutations of small WAV/FLAC/OGG/MP3/Opus/M4A files for ``--fuzz-seconds``: files
  per minute, crashes, uncaught exceptions, hangs, peak RSS of the decoding process;
- kills: ``audiotools batch`` (tiny.en) on short LibriSpeech files, SIGKILLed at a random moment
  (half the time the batch process alone, half its whole process group; every third run with
  ``--force``), then: processes of it still alive after 15 s (orphans); after a final resume,
  files without a complete output set (lost) and output sets that fail ``provenance verify
  --exports`` or disagree with their manifest (mixed);
- time for ``audiotools transcribe`` to reject an empty file (the CLI process, best of 3).

Prints the figures and writes ``benchmarks/results/reliability.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import contextlib

from _common import ROOT, SHARED, WORK, machine, write_result
from reliability_corpus import alive, descendants, fuzz_corpus, hostile_inputs, run_harness


def hostile(work: Path) -> dict:
    items = hostile_inputs(work / "hostile")
    r = run_harness([h.path for h in items], timeout=120)
    bad = [
        {"input": h.name, "status": o.status, "detail": str(o.detail)[:300]}
        for h, o in zip(items, r.outcomes)
        if o.status in ("crash", "hang", "uncaught")
    ]
    unexpected = [
        {"input": h.name, "expected": h.expect, "got": o.status, "detail": str(o.detail)[:200]}
        for h, o in zip(items, r.outcomes)
        if h.expect != "any" and o.status != h.expect
    ]
    return {
        "tried": len(items),
        "crashed": r.count("crash") + r.count("hang"),
        "tracebacks": r.count("uncaught"),
        "decoded": r.count("ok"),
        "refused_with_one_line": r.count("error"),
        "unexpected_outcome": unexpected,
        "problems": bad,
        "peak_rss_mb": r.peak_rss_mb,
        "seconds": round(r.seconds, 2),
    }


def fuzz(work: Path, seconds: float) -> dict:
    d = work / "fuzz"
    totals = {"files": 0, "crash": 0, "hang": 0, "uncaught": 0, "ok": 0, "error": 0}
    peak, t0, seed, problems = 0.0, time.perf_counter(), 0, []
    while time.perf_counter() - t0 < seconds:
        shutil.rmtree(d, ignore_errors=True)
        paths = fuzz_corpus(d, 500, seed=1000 + seed)
        seed += 1
        r = run_harness(paths, timeout=60)
        peak = max(peak, r.peak_rss_mb)
        totals["files"] += len(paths)
        for k in ("crash", "hang", "uncaught", "ok", "error"):
            totals[k] += r.count(k)
        problems += [
            {"file": Path(o.path).name, "seed": 1000 + seed - 1, "status": o.status, "detail": str(o.detail)[:300]}
            for o in r.outcomes
            if o.status in ("crash", "hang", "uncaught")
        ]
    wall = time.perf_counter() - t0
    return {
        **totals,
        "seconds": round(wall, 1),
        "files_per_minute": round(totals["files"] / wall * 60),
        "peak_rss_mb": peak,
        "problems": problems[:20],
    }


def _output_sets(out: Path, names: list[str], src: Path) -> tuple[int, int]:
    """(lost, mixed): inputs without a JSON; sets that fail verify --exports or their manifest."""
    from audiotools.batch.plan import check_output_set
    from audiotools.provenance.document import sibling_exports, verify

    lost = mixed = 0
    for n in names:
        js = out / (Path(n).stem + ".json")
        if not js.is_file():
            lost += 1
            continue
        doc = json.loads(js.read_text(encoding="utf-8"))
        failed = [c for c in verify(doc, exports=sibling_exports(js)) if not c.ok]
        outputs = {p.suffix: p for p in [js, *sibling_exports(js)]}
        if failed or check_output_set(js, outputs):
            mixed += 1
    return lost, mixed


def kills(work: Path, n: int, seed: int = 16) -> dict:
    rng = random.Random(seed)
    src = work / "kill-in"
    out = work / "kill-out"
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    src.mkdir(parents=True)
    files = (
        sorted((SHARED / "speakers" / "1688").glob("*.flac"))[:5]
        + sorted((SHARED / "speakers" / "2609").glob("*.flac"))[:5]
    )
    names = []
    for i, f in enumerate(files):
        shutil.copy(f, src / f"f{i}.flac")
        names.append(f"f{i}.flac")
    base = [sys.executable, "-m", "audiotools", "-q", "batch", str(src), "-o", str(out)]
    base += ["--model", "tiny.en", "--language", "en", "--no-diarize", "--workers", "2", "--batch-size", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="2")
    rows, orphans, mixed_after_kill = [], 0, 0
    for k in range(n):
        force = k % 3 == 2
        cmd = base + (["--force"] if force else [])
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        delay = rng.uniform(3.0, 14.0)
        t0 = time.time()
        kids: set[int] = set()
        while time.time() - t0 < delay and proc.poll() is None:
            kids |= descendants(proc.pid)
            time.sleep(0.05)
        finished = proc.poll() is not None
        group = rng.random() < 0.5
        if not finished:
            kids |= descendants(proc.pid)
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 15
        while time.time() < deadline and any(alive(p) for p in kids):
            time.sleep(0.1)
        left = [p for p in kids if alive(p)]
        for p in left:  # do not let one failure poison the next rounds
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        orphans += len(left)
        _, mixed_now = _output_sets(out, names, src)
        mixed_after_kill += mixed_now
        rows.append(
            {
                "delay_s": round(delay, 2),
                "killed": not finished,
                "whole_group": group and not finished,
                "force": force,
                "processes_seen": len(kids),
                "orphans": len(left),
                "mixed_sets_left_by_the_kill": mixed_now,
            }
        )
        print(f"  kill {k + 1}/{n}: {rows[-1]}", flush=True)
    r = subprocess.run(base, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    report = json.loads((out / "batch-report.json").read_text(encoding="utf-8"))
    statuses = [f["status"] for f in report["files"]]
    lost, mixed = _output_sets(out, names, src)
    leftovers = [p.name for p in out.rglob("*.tmp")]
    shm = [s for s in os.listdir("/dev/shm") if s.startswith("audiotools_pf_")]
    return {
        "kills": sum(1 for x in rows if x["killed"]),
        "runs": n,
        "orphans": orphans,
        "lost": lost,
        "mixed_sets_after_resume": mixed,
        "mixed_sets_seen_right_after_kills": mixed_after_kill,
        "final_resume_exit_code": r.returncode,
        "final_statuses": {s: statuses.count(s) for s in set(statuses)},
        "temp_files_left": len(leftovers),
        "audiotools_shm_segments_left": len(shm),
        "rounds": rows,
    }


def empty_file_rejection(work: Path) -> dict:
    empty = work / "empty.wav"
    empty.write_bytes(b"")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = subprocess.run(
            [sys.executable, "-m", "audiotools", "transcribe", str(empty), "-o", str(work / "empty-out")],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        times.append(time.perf_counter() - t0)
    return {
        "seconds_best": round(min(times), 3),
        "seconds_all": [round(t, 3) for t in times],
        "exit": r.returncode,
        "message": r.stderr.strip(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fuzz-seconds", type=float, default=60.0)
    ap.add_argument("--kills", type=int, default=24)
    ap.add_argument("--skip", nargs="*", default=[], choices=["hostile", "fuzz", "kills", "empty"])
    args = ap.parse_args()
    work = WORK / "reliability"
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": machine()}
    if "hostile" not in args.skip:
        result["hostile"] = hostile(work)
        h = result["hostile"]
        print(
            f"hostile inputs: {h['tried']} tried, {h['crashed']} crashed, {h['tracebacks']} tracebacks "
            f"({h['decoded']} decoded, {h['refused_with_one_line']} refused with one line), "
            f"peak RSS {h['peak_rss_mb']} MB"
        )
    if "empty" not in args.skip:
        result["empty_file"] = empty_file_rejection(work)
        print(f"empty file rejected in {result['empty_file']['seconds_best']} s (best of 3, whole CLI process)")
    if "fuzz" not in args.skip:
        result["fuzz"] = fuzz(work, args.fuzz_seconds)
        f = result["fuzz"]
        print(
            f"fuzz: {f['files']} files in {f['seconds']} s ({f['files_per_minute']}/min): {f['crash']} crashes, "
            f"{f['hang']} hangs, {f['uncaught']} uncaught exceptions; peak RSS {f['peak_rss_mb']} MB"
        )
    if "kills" not in args.skip:
        result["kills"] = kills(work, args.kills)
        k = result["kills"]
        print(
            f"kills: {k['kills']} kills in {k['runs']} runs, {k['orphans']} orphans, {k['lost']} lost, "
            f"{k['mixed_sets_after_resume']} mixed sets after resume (right after the kills: "
            f"{k['mixed_sets_seen_right_after_kills']}), final statuses {k['final_statuses']}"
        )
    path = write_result("reliability", result)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
