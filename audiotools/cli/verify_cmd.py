"""``audiotools verify RECORDING (--speaker NAME | --reference FILE...)`` and ``verify --trials``"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from audiotools.cli.common import console, info, parse_range, quiet, stdout
from audiotools.cli.options import add_quality_options, quality_options
from audiotools.cli.report_cmd import add_report_case_options, case_values
from audiotools.errors import UsageError

DESCRIPTION = """\
Compare a questioned recording with a known voice and report calibrated evidence.

For each diarised speaker of RECORDING (or the --segment), the speech is compared with the known
voice (an enrolled voiceprint, or reference files) after both are brought to the same recording
condition (e.g. telephone band). The report gives the raw cosine score, the cohort-normalised score
(AS-norm), a log10 likelihood ratio from the calibration, a verdict in words (ENFSI verbal scale)
and the turns that carry the evidence, each scored on its own. A likelihood ratio is evidence for
one proposition over the other, not proof of identity.

Quality gate: each compared speaker's net speech (VAD speech) and estimated SNR are shown; below
--min-net-speech (default 3 s) or --min-snr (default 10 dB) the verdict is "insufficient quality"
instead of a likelihood ratio; --force gives the likelihood ratio anyway, flagged as a quality
warning (see docs/voiceprints.md for how the thresholds were measured).

Trials mode scores many pairs: each line of T.tsv is ENROLMENT_FILES<TAB>TEST_FILE (enrolment files
comma-separated); S.tsv repeats both columns and adds the raw cosine score and the calibrated log10
likelihood ratio (llr); --details adds the AS-norm score and the recording condition.

examples:
  audiotools verify call.wav --speaker "Anna"
  audiotools verify call.wav --reference interview1.wav interview2.wav --segment 12.5-40 --json
  audiotools verify --trials T.tsv --output S.tsv
"""


def register(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="compare a recording with a known voice (calibrated likelihood ratio)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("recording", nargs="?", metavar="RECORDING", help="the questioned recording")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--speaker", metavar="NAME", help="an enrolled voiceprint")
    who.add_argument("--reference", nargs="+", metavar="FILE", help="known samples of the voice")
    p.add_argument(
        "--segment",
        type=parse_range,
        default=None,
        metavar="START-END",
        help="compare only this part of the recording (seconds or MM:SS)",
    )
    p.add_argument(
        "--rttm",
        metavar="FILE",
        default=None,
        help="speaker turns for RECORDING from an RTTM file instead of running diarisation",
    )
    p.add_argument(
        "--no-diarize", dest="diarize", action="store_false", help="treat the whole recording as one speaker"
    )
    p.add_argument(
        "--condition",
        choices=["wideband", "telephone", "telephone-codec"],
        default=None,
        help="override the detected recording condition of RECORDING",
    )
    p.add_argument(
        "--voiceprints",
        metavar="DIR",
        default=None,
        help="voiceprint store (default: $AUDIOTOOLS_VOICEPRINTS or ./voiceprints)",
    )
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    add_quality_options(p)
    add_report_case_options(p, "also write the evidence report RECORDING-STEM.report.html (into --report-dir)")
    p.add_argument("--report-dir", default=".", metavar="DIR", help="where --report writes (default: .)")
    t = p.add_argument_group("trials")
    t.add_argument("--trials", metavar="T.tsv", help="score many trials (ENROLMENT_FILES<TAB>TEST_FILE)")
    t.add_argument("--output", "-o", metavar="S.tsv", help="where to write the scores (with --trials)")
    t.add_argument(
        "--details",
        action="store_true",
        help="with --trials: also write the AS-norm score and the condition compared in (columns 5-6)",
    )
    p.set_defaults(func=run)


def _calibration_store(args, store, uses_store: bool):
    """Whose calibration applies: a store's own refit (``_calibration.json``) describes the population
    of that store's cases, so it is used when comparing with its voiceprints, or for file-only
    comparisons when the store was named explicitly (--voiceprints or $AUDIOTOOLS_VOICEPRINTS);
    otherwise the shipped calibration."""
    import os

    from audiotools.speakers.voiceprints import ENV

    explicit = bool(args.voiceprints or os.environ.get(ENV))
    return store.dir if store.exists() and (uses_store or explicit) else None


def run(args) -> int:
    if args.trials:
        return run_trials(args)
    if not args.recording:
        raise UsageError("verify needs a RECORDING (or --trials T.tsv)")
    if not args.speaker and not args.reference:
        raise UsageError("say whom to compare with: --speaker NAME (an enrolled voiceprint) or --reference FILE...")
    from audiotools.audio.decode import probe_audio
    from audiotools.speakers.verification import Scorer, reference_from_files, reference_from_store, verify
    from audiotools.speakers.voiceprints import VoiceprintStore

    probe_audio(args.recording)  # file and header, before any model loads
    store = VoiceprintStore(args.voiceprints)
    scorer = Scorer(_calibration_store(args, store, bool(args.speaker)))
    if args.speaker:
        ref = reference_from_store(store, args.speaker, scorer)
    else:
        ref = reference_from_files(args.reference, scorer)
    from audiotools.export.rttm import recording_turns

    turns = recording_turns(args.rttm, args.recording) if args.rttm else None
    res = verify(
        args.recording,
        ref,
        scorer,
        segment=args.segment,
        turns=turns,
        diarize=args.diarize,
        condition=args.condition,
        quality=quality_options(args),
    )
    if args.report:
        _write_report(args, res)
    if args.json:
        stdout.print_json(json.dumps(res, ensure_ascii=False))
        return 0
    print_report(res)
    return 0


def _write_report(args, res: dict) -> None:
    from audiotools.audio.decode import load_audio
    from audiotools.report import build, html

    out = Path(args.report_dir) / f"{Path(args.recording).stem}.report.html"
    # the turns came from an RTTM, or from the diariser verify ran with its defaults
    diarization = False if args.rttm else build.default_diarization()
    model = build.from_verification(
        res, report_path=out, decoded=load_audio(args.recording), diarization=diarization, **case_values(args)
    )
    info(f"report: {html.write(model, out)}", soft_wrap=True)


def print_table(t) -> None:
    """Print a rich table whose cells are never cut: every column but the last is as wide as its
    widest cell (a heading may wrap at its spaces), the last folds long text. When stdout is a pipe
    or a file (rich assumes 80 columns) the table is printed as wide as that needs."""
    from rich.measure import Measurement
    from rich.text import Text

    for col in t.columns[:-1]:  # a fixed width is never collapsed
        col.width = max(
            [Text.from_markup(str(c)).cell_len for c in col.cells] + [len(w) for w in str(col.header).split()]
        )
    t.columns[-1].overflow = "fold"
    need = Measurement.get(stdout, stdout.options.update_width(10**4), t).minimum
    if stdout.is_terminal or need <= stdout.width:
        stdout.print(t)
        return
    width = stdout.width
    stdout.width = need
    try:
        stdout.print(t)
    finally:
        stdout.width = width


def print_report(res: dict) -> None:
    from rich.table import Table

    ch = res["recording"]["channel"]
    stdout.print(
        f"[bold]Questioned:[/] {res['recording']['path']} ({res['recording']['duration']:.1f} s; "
        f"detected {ch['condition']}: {'; '.join(ch['reasons'])})"
    )
    rq = res["reference"].get("quality") or {}
    snr = "" if rq.get("snr_db") is None else f", estimated SNR {rq['snr_db']:.0f} dB"
    stdout.print(
        f"[bold]Known:[/] {res['reference']['label']} ({res['reference']['speech_seconds']:.1f} s of net speech{snr})"
    )
    stdout.print(
        f"[bold]Compared in condition:[/] {res['condition_description']}; {res['method']['normalisation']}; "
        f"calibration: {res['method']['calibration']}"
    )
    for n in res["notes"]:
        stdout.print(f"[yellow]note:[/] {n}")
    from audiotools.speakers.verification import lr_text

    t = Table(title="Scores per questioned speaker")
    for c in ("speaker", "net speech", "SNR", "cosine", "AS-norm", "log10 LR", "LR", "support"):
        t.add_column(c, justify="right" if c not in ("speaker", "support") else "left")
    marks = {"upper": "≥", "lower": "≤"}

    def snr(u):
        v = u.get("quality", {}).get("snr_db")
        return "-" if v is None else f"{v:.0f} dB"

    for u in res["units"]:
        if not u.get("scored"):
            t.add_row(u["speaker"], f"{u['speech_seconds']:.1f} s", snr(u), "-", "-", "-", "-", u.get("reason", ""))
            continue
        t.add_row(
            u["speaker"],
            f"{u['speech_seconds']:.1f} s",
            snr(u),
            f"{u['score']:.3f}",
            f"{u['snorm']:.2f}",
            marks.get(u.get("llr_bound") or "", "") + f"{u['llr']:+.2f}",
            u.get("lr_text") or lr_text(u["llr"], u.get("llr_bound")),
            u["support"] + (" [red](quality warning)[/]" if u.get("quality_warning") else ""),
        )
    print_table(t)  # labels whole, the verdict wrapped
    if any(u.get("llr_clipped") for u in res["units"]):
        lo, hi = res["method"]["llr_bounds"]
        stdout.print(
            f"[dim]≥ / ≤: at the calibration's bound (log10 LR {lo:+.2f} to {hi:+.2f}): the likelihood ratio is "
            "clipped there; the true value may be more extreme[/]"
        )
    g = res["method"]["quality_gate"]
    stdout.print(
        f"[dim]quality gate: at least {g['min_net_speech']:g} s of net speech and {g['min_snr_db']:g} dB "
        f"estimated SNR{' (forced: likelihood ratios are given below the thresholds too)' if g['forced'] else ''}[/]"
    )
    for u in res["units"]:
        if not u.get("scored"):
            stdout.print(f"\n[bold]{u['speaker']}[/]: no likelihood ratio: {u.get('reason', '')}")
            continue
        if u.get("quality_warning"):
            stdout.print(
                f"\n[red]quality warning ({u['speaker']}):[/] "
                + "; ".join(u["quality"]["reasons"])
                + ": the likelihood ratio was forced and was not validated for such material"
            )
        stdout.print(f"\n[bold]{u['speaker']}[/]: {u['verbal']}")
        if u["segments"]:
            st = Table(title=f"Evidence by turn ({u['speaker']})", show_edge=False)
            for c in ("start", "end", "speech", "cosine", "log10 LR"):
                st.add_column(c, justify="right")
            for s in u["segments"]:
                st.add_row(
                    f"{s['start']:.2f}",
                    f"{s['end']:.2f}",
                    f"{s['speech_seconds']:.1f} s",
                    f"{s['score']:.3f}",
                    ("≥" if s["llr"] > 0 else "≤") * bool(s.get("llr_clipped")) + f"{s['llr']:+.2f}",
                )
            stdout.print(st)
    stdout.print(f"\n[dim]H1: {res['propositions']['H1']}. H2: {res['propositions']['H2']}.[/]")
    stdout.print(f"[dim]{res['disclaimer']}[/]")


def run_trials(args) -> int:
    if args.recording or args.speaker or args.reference:
        raise UsageError("--trials scores the files named in T.tsv; do not also give RECORDING/--speaker/--reference")
    if not args.output:
        raise UsageError("--trials needs --output S.tsv")
    from audiotools.speakers.verification import Scorer, read_trials, score_trials, write_scores
    from audiotools.speakers.voiceprints import VoiceprintStore

    rows = read_trials(args.trials)
    if not rows:
        raise UsageError(f"{args.trials}: no trials")
    scorer = Scorer(_calibration_store(args, VoiceprintStore(args.voiceprints), False))

    def progress(stage, done, total):
        if not quiet() and sys.stderr.isatty():
            console.print(f"{stage}: {done}/{total}", end="\r")

    scores = score_trials(rows, scorer, base_dir=Path(args.trials).parent, progress=progress)
    write_scores(args.output, rows, scores, details=args.details)
    conds = {}
    for s in scores:
        conds[s["condition"]] = conds.get(s["condition"], 0) + 1
    info(f"scored {len(rows)} trials ({', '.join(f'{n} {c}' for c, n in conds.items())}) -> {args.output}")
    return 0
