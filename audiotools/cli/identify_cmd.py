"""``audiotools identify FILE...``: name the speakers of recordings from the voiceprint store."""

from __future__ import annotations

import argparse
import json

from audiotools.cli.common import each_file, probe_inputs, stdout
from audiotools.cli.options import add_quality_options, quality_options
from audiotools.cli.report_cmd import add_report_case_options, case_values
from audiotools.errors import UsageError

DESCRIPTION = """\
Diarise each recording (or read its turns from --rttm) and match every speaker against the
enrolled voiceprints. A speaker is named only when the calibrated evidence makes it more probable
than not (Bayes decision with --prior and the decision costs; see docs/voiceprints.md); otherwise
they stay SPEAKER_xx. Two speakers are never given the same name.

Quality gate: each speaker's net speech and estimated SNR are shown; a speaker below --min-net-speech
(default 3 s) or --min-snr (default 10 dB) is not named ("insufficient quality") unless --force.

examples:
  audiotools identify meeting.wav
  audiotools identify call.wav --voiceprints cases/42/voiceprints --prior 0.2 --json
  audiotools identify samples/conversation.wav --rttm samples/conversation.rttm
"""


def register(sub) -> None:
    p = sub.add_parser(
        "identify",
        help="name the speakers of recordings from enrolled voiceprints",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--voiceprints",
        metavar="DIR",
        default=None,
        help="voiceprint store (default: $AUDIOTOOLS_VOICEPRINTS or ./voiceprints)",
    )
    p.add_argument(
        "--rttm",
        metavar="FILE",
        default=None,
        help="speaker turns from an RTTM file (one file: all its turns; several: matched by file stem)",
    )
    p.add_argument(
        "--prior",
        type=float,
        default=None,
        help="prior probability that a speaker is one of the enrolled people (default 0.5)",
    )
    p.add_argument(
        "--false-name-cost",
        type=float,
        default=None,
        help="cost of naming the wrong person relative to leaving an enrolled person unnamed (default 1)",
    )
    p.add_argument(
        "--condition",
        choices=["wideband", "telephone", "telephone-codec"],
        default=None,
        help="override the detected recording condition",
    )
    p.add_argument("--json", action="store_true")
    add_quality_options(p)
    add_report_case_options(p, "also write the evidence report FILE-STEM.report.html per file (into --report-dir)")
    p.add_argument("--report-dir", default=".", metavar="DIR", help="where --report writes (default: .)")
    p.set_defaults(func=run)


def _turns_for(args, path: str, decoded) -> list[dict]:
    if args.rttm:
        from audiotools.export.rttm import recording_turns

        return recording_turns(args.rttm, path, single=len(args.files) == 1)
    from audiotools.speakers.verification import diarized_turns

    return diarized_turns(decoded)


def run(args) -> int:
    from audiotools.audio.decode import load_audio
    from audiotools.speakers.identification import IdentifyOptions, identify
    from audiotools.speakers.verification import Scorer
    from audiotools.speakers.voiceprints import VoiceprintStore

    options = IdentifyOptions().replace(
        prior=args.prior, false_name_cost=args.false_name_cost, condition=args.condition, quality=quality_options(args)
    )
    store = VoiceprintStore(args.voiceprints)
    if not store.exists() or store.is_empty():
        raise UsageError(f"{store.dir}: no voiceprints to identify against (enrol with `audiotools voiceprint enroll`)")
    bad = probe_inputs(args.files)  # before the models load
    scorer = Scorer(store.dir)
    # a corrupt record or one of another model: one line now, not after diarising
    store.comparable(scorer.extractor.model_id, scorer.extractor.weights_sha256)

    def one(f: str) -> dict:
        if f in bad:
            raise bad[f]
        decoded = load_audio(f)
        turns = _turns_for(args, f, decoded)
        res = identify(decoded, turns, store, options, scorer=scorer)
        res["file"] = f
        if args.report:
            _write_report(args, res, decoded, turns)
        if not args.json:
            _print(res)
        return res

    done, failures = each_file(args.files, one)
    out = [res for _, res in done]
    if args.json:
        stdout.print_json(json.dumps(out if len(args.files) > 1 else out[0], ensure_ascii=False))
    return 1 if failures else 0


def _write_report(args, res: dict, decoded, turns) -> None:
    from pathlib import Path

    from audiotools.cli.common import info
    from audiotools.report import build, html

    out = Path(args.report_dir) / f"{Path(res['file']).stem}.report.html"
    # the turns came from an RTTM, or from the diariser identify ran with its defaults
    diarization = False if args.rttm else build.default_diarization()
    model = build.from_identification(
        res, report_path=out, decoded=decoded, turns=turns, diarization=diarization, **case_values(args)
    )
    info(f"report: {html.write(model, out)}", soft_wrap=True)


def _print(res: dict) -> None:
    from rich.table import Table

    from audiotools.cli.verify_cmd import print_table

    cond = res["info"]["condition"]
    t = Table(title=f"{res['file']} ({cond['condition']})")
    for c in ("speaker", "identity", "best match", "log10 LR", "posterior", "net speech", "SNR", "quality"):
        t.add_column(c)
    marks = {"upper": "≥", "lower": "≤"}
    notes = []
    clipped = False
    for lab in sorted(res["candidates"]):
        c = res["candidates"][lab]
        q = c.get("quality") or {}
        idt = res["identities"].get(lab)
        t.add_row(
            lab,
            idt["name"] if idt else "-",
            c.get("name") or "-",
            marks.get(c.get("llr_bound") or "", "") + f"{c['llr']:+.2f}" if "llr" in c else "-",
            _posterior_text(c),
            f"{c.get('speech_seconds', 0):.1f} s",
            "-" if q.get("snr_db") is None else f"{q['snr_db']:.0f} dB",
            "ok" if q.get("passed") else ("[red]insufficient (forced)[/]" if "llr" in c else "insufficient"),
        )
        if not idt:
            notes.append(f"{lab}: {c.get('decision', 'not identified')}")
        clipped = clipped or bool(c.get("llr_clipped"))
    print_table(t)  # labels and names whole, also in a pipe or a file
    if clipped:
        notes.append(
            "≥ / ≤: the log10 LR is at the calibration's bound (clipped there; the true value may be more extreme), "
            "so the posterior computed from it is a bound too"
        )
    for n in notes:
        stdout.print(f"[dim]{n}[/]")
    stdout.print(
        f"[dim]prior {res['info']['prior']:g} that a speaker is enrolled; likelihood ratios are evidence, "
        "not proof of identity[/]"
    )


def _posterior_text(c: dict) -> str:
    """The posterior as shown: never "1.000" (it is not certainty), "≥" when computed from a clipped LR."""
    if "posterior" not in c:
        return "-"
    p = float(c["posterior"])
    txt = "> 0.999" if p >= 0.9995 else ("< 0.001" if p < 0.0005 else f"{p:.3f}")
    return ("≥" if c.get("llr_bound") == "upper" and p < 0.9995 else "") + txt
