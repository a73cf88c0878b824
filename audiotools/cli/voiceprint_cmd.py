"""``audiotools voiceprint enroll|list|show|remove|calibrate``"""

from __future__ import annotations

import argparse
import json

from audiotools.cli.common import console, info, parse_range, stdout
from audiotools.errors import UsageError

STORE_HELP = "voiceprint store directory (default: $AUDIOTOOLS_VOICEPRINTS or ./voiceprints)"


def _store_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--voiceprints", metavar="DIR", default=None, help=STORE_HELP)
    return p


def register(sub) -> None:
    parent = _store_parent()
    p = sub.add_parser(
        "voiceprint",
        help="enrol, list, inspect and remove voiceprints; refit the calibration",
        description="The voiceprint store: one record per person (JSON + safetensors embeddings). "
        "See docs/voiceprints.md.",
    )
    s = p.add_subparsers(dest="voiceprint_command", metavar="ACTION")

    en = s.add_parser(
        "enroll",
        parents=[parent],
        help="enrol (or add samples to) a person",
        description="Check and embed enrolment samples, then add them to NAME's record (created if "
        "needed; more samples give a better voiceprint). A sample is rejected when it "
        "has less than 3 s of speech or holds more than one voice.",
    )
    en.add_argument("name", metavar="NAME", help="display name (Unicode letters allowed, e.g. 'Анна')")
    en.add_argument("files", nargs="+", metavar="FILE", help="audio files with only this person speaking")
    en.add_argument(
        "--segment",
        type=parse_range,
        default=None,
        metavar="START-END",
        help="use only this part of each file (seconds or MM:SS)",
    )
    en.add_argument(
        "--min-speech", type=float, default=None, metavar="S", help="minimum seconds of speech per sample (default 3)"
    )
    en.add_argument(
        "--no-voice-check",
        dest="check_voices",
        action="store_false",
        help="do not reject samples that seem to hold two voices (the check is still recorded)",
    )
    en.add_argument(
        "--force",
        action="store_true",
        help="add samples to an existing NAME even when they do not match the voice enrolled "
        "(calibrated log10 LR <= 0; refused without --force)",
    )
    en.add_argument("--json", action="store_true", help="machine-readable output")
    en.set_defaults(func=cmd_enroll)

    ls = s.add_parser("list", parents=[parent], help="list enrolled people")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    sh = s.add_parser("show", parents=[parent], help="show one person's record")
    sh.add_argument("name", metavar="NAME")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_show)

    rm = s.add_parser("remove", parents=[parent], help="delete a person's record and embeddings")
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(func=cmd_remove)

    ca = s.add_parser(
        "calibrate",
        parents=[parent],
        help="refit the score calibration on your own labelled trials",
        description="Score labelled trials (ENROLMENT_FILES<TAB>TEST_FILE<TAB>target|nontarget; "
        "enrolment files comma-separated) and refit the logistic calibration for each "
        "recording condition found, writing <store>/_calibration.json, which is used "
        "from then on instead of the shipped calibration for those conditions.",
    )
    src = ca.add_mutually_exclusive_group()
    src.add_argument("--trials", "--key", dest="trials", metavar="K.tsv", help="labelled trials")
    src.add_argument("--reset", action="store_true", help="remove the store's calibration (back to the shipped one)")
    ca.add_argument(
        "--description", metavar="TEXT", default=None, help="what the trials are (recorded in the calibration file)"
    )
    ca.add_argument("--json", action="store_true")
    ca.set_defaults(func=cmd_calibrate)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _store(args):
    from audiotools.speakers.voiceprints import VoiceprintStore

    return VoiceprintStore(args.voiceprints)


def cmd_enroll(args) -> int:
    from audiotools.speakers.enrol import enroll
    from audiotools.speakers.verification import Scorer
    from audiotools.speakers.voiceprints import validate_name

    validate_name(args.name)
    store = _store(args)
    vp, added, skipped = enroll(
        store,
        args.name,
        args.files,
        Scorer(store.dir),
        segment=args.segment,
        min_speech=args.min_speech,
        check_voices=args.check_voices,
        force=args.force,
    )
    if args.json:
        stdout.print_json(
            json.dumps(
                {
                    "voiceprint": vp.summary(),
                    "record": str(vp.path),
                    "added": [s.to_dict() for s in added],  # checks.same_voice: the LR against the record
                    "skipped_duplicates": [s.file for s in skipped],
                },
                ensure_ascii=False,
            )
        )
        return 0
    from audiotools.speakers.verification import verbal_short

    for s in added:
        same = s.checks.get("same_voice")
        match = (
            f"; same voice as the record: log10 LR {same['llr']:+.2f} ({verbal_short(same['llr'])}"
            f"{', added with --force' if same.get('forced') else ''})"
            if same
            else ""
        )
        info(
            f"enrolled [bold]{s.file}[/] for [bold]{vp.name}[/]: {s.speech_seconds:.1f} s of speech, {s.condition}"
            + match
        )
    for s in skipped:
        info(f"[yellow]skipped[/] {s.file}: already enrolled for {vp.name}")
    info(f"{vp.name}: {len(vp.samples)} sample(s), {vp.speech_seconds:.1f} s of speech -> {vp.path}")
    _note_store_calibration(store)
    return 0


def _note_store_calibration(store) -> None:
    from audiotools.speakers.calibration import STORE_FILE

    p = store.dir / STORE_FILE
    if p.is_file():
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            what = "; ".join(sorted({str(c.get("fitted_on")) for c in d.get("conditions", {}).values()}))
        except (OSError, ValueError, AttributeError):
            what = "unreadable"
        info(
            f"[yellow]note:[/] this store has its own calibration ({p.name}: {what}); "
            "it applies to every comparison with its voiceprints"
        )


def cmd_list(args) -> int:
    store = _store(args)
    people = store.all()
    if args.json:
        stdout.print_json(
            json.dumps({"store": str(store.dir), "voiceprints": [vp.summary() for vp in people]}, ensure_ascii=False)
        )
        return 0
    if not people:
        info(f"no voiceprints in {store.dir}")
        return 0
    from rich.table import Table

    t = Table(title=f"Voiceprints in {store.dir}")
    for c in ("name", "samples", "speech", "recorded as", "updated"):
        t.add_column(c)
    for vp in people:
        t.add_row(vp.name, str(len(vp.samples)), f"{vp.speech_seconds:.1f} s", vp.native_condition, vp.updated)
    stdout.print(t)
    return 0


def cmd_show(args) -> int:
    store = _store(args)
    vp = store.get(args.name)
    d = vp.summary()
    d["record"] = str(vp.path)
    d["samples"] = [s.to_dict() for s in vp.samples]
    if args.json:
        stdout.print_json(json.dumps(d, ensure_ascii=False))
        return 0
    stdout.print(f"[bold]{vp.name}[/]  ({vp.path})")
    stdout.print(
        f"created {vp.created}, updated {vp.updated}; model {vp.model_id} (weights sha256 {vp.weights_sha256[:16]}…)"
    )
    from rich.table import Table

    t = Table()
    for c in ("file", "sha256", "duration", "speech", "segment", "condition", "enrolled"):
        t.add_column(c)
    for s in vp.samples:
        seg = f"{s.segment[0]:g}-{s.segment[1]:g}" if s.segment else "-"
        t.add_row(
            s.file,
            s.sha256[:16] + "…",
            f"{s.duration:.1f} s",
            f"{s.speech_seconds:.1f} s",
            seg,
            s.condition,
            s.enrolled,
        )
    stdout.print(t)
    return 0


def cmd_remove(args) -> int:
    vp = _store(args).remove(args.name)
    info(f"removed {vp.name} ({vp.path})")
    return 0


def cmd_calibrate(args) -> int:
    from pathlib import Path

    from audiotools.speakers.calibration import STORE_FILE
    from audiotools.speakers.verification import Scorer, read_trials, recalibrate

    store = _store(args)
    if args.reset:
        p = store.dir / STORE_FILE
        if p.is_file():
            with store.lock(True):
                p.unlink()
            info(f"removed {p}; the shipped calibration applies again")
        else:
            info(f"{store.dir} has no calibration of its own")
        return 0
    if not args.trials:
        raise UsageError("voiceprint calibrate needs --trials K.tsv (or --reset)")
    rows = read_trials(args.trials, with_key=True)
    if not rows:
        raise UsageError(f"{args.trials}: no trials")
    res = recalibrate(
        store.dir,
        rows,
        Scorer(store.dir),
        base_dir=Path(args.trials).parent,
        source=args.trials,
        description=args.description,
    )
    if args.json:
        stdout.print_json(json.dumps(res))
        return 0
    from rich.table import Table

    t = Table(title=f"Calibration refit -> {res['file']}")
    for c in ("condition", "targets", "non-targets", "EER", "Cllr before", "Cllr after", "min Cllr", "note"):
        t.add_column(c)
    for cond, r in res["conditions"].items():
        if "skipped" in r:
            t.add_row(cond, str(r["target"]), str(r["nontarget"]), "-", "-", "-", "-", r["skipped"])
        else:
            t.add_row(
                cond,
                str(r["target"]),
                str(r["nontarget"]),
                f"{100 * r['eer']:.2f} %",
                f"{r['cllr_before']:.3f}",
                f"{r['cllr_after']:.3f}",
                f"{r['min_cllr']:.3f}",
                "in-sample figures",
            )
    stdout.print(t)
    console.print(
        "[dim]Cllr after is measured on the trials it was fitted on (optimistic); "
        "check it on held-out trials with `audiotools verify --trials` + `audiotools eval eer`.[/]"
    )
    return 0
