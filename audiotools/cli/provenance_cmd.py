"""``audiotools provenance verify|sign|keygen``"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from audiotools.cli.common import info
from audiotools.errors import UsageError

VERIFY_EPILOG = """\
examples:
  audiotools provenance verify out/call.json
  audiotools provenance verify out/call.json --audio call.wav --public-key court.pub
  audiotools provenance verify out/call.json --exports          # also call.srt/.vtt/.txt/.tsv/.rttm
  audiotools provenance verify out/call.json --export out/call.srt --json

exit status: 0 every check passed and a trusted key (--public-key, --trusted-keys or
$AUDIOTOOLS_TRUSTED_KEYS) signed the transcript; 1 a check failed (or the file is not a
transcript); 3 every check passed but nothing authenticates the transcript: it is not signed,
or it is signed and no trusted key was given (anyone can edit a transcript, recompute its
hashes and re-sign it with their own key). See docs/provenance.md.
"""


def register(sub) -> None:
    p = sub.add_parser(
        "provenance",
        help="verify transcript hashes and signatures; make signing keys",
        description="Check that a transcript is unchanged and belongs to its audio, "
        "sign transcripts, and make Ed25519 key pairs. See docs/provenance.md.",
    )
    s = p.add_subparsers(dest="provenance_command", metavar="ACTION")

    v = s.add_parser(
        "verify",
        help="re-check a transcript's hashes (and its audio, exports, signature)",
        description="Re-check the transcript hash; with --audio also the source-file, "
        "decoded-PCM and per-segment hashes; with --public-key the signature.",
        epilog=VERIFY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("transcript", metavar="TRANSCRIPT.json")
    v.add_argument("--audio", "-a", metavar="FILE", help="the original recording: check file, PCM and segment hashes")
    v.add_argument(
        "--public-key",
        "-k",
        action="append",
        default=[],
        metavar="KEY",
        help="a trusted Ed25519 public key (PEM file or base64; repeatable): the signature must be by one",
    )
    v.add_argument(
        "--trusted-keys",
        metavar="DIR",
        default=None,
        help="a directory of trusted public keys (*.pub, *.pem; default $AUDIOTOOLS_TRUSTED_KEYS)",
    )
    v.add_argument(
        "--export",
        "-e",
        action="append",
        default=[],
        metavar="FILE",
        help="an SRT/VTT/TXT/TSV/RTTM export to check against the JSON (repeatable)",
    )
    v.add_argument(
        "--exports", action="store_true", help="check every export beside the JSON (same name, other extension)"
    )
    v.add_argument("--json", action="store_true", help="machine-readable output")
    v.set_defaults(func=cmd_verify)

    sg = s.add_parser(
        "sign",
        help="sign (or re-sign) a transcript whose hash is intact",
        description="Add an Ed25519 signature over provenance.transcript_sha256. The hash "
        "excludes the signature, so exports stay valid.",
    )
    sg.add_argument("transcript", metavar="TRANSCRIPT.json")
    sg.add_argument("--key", required=True, metavar="KEY", help="Ed25519 private key (PEM)")
    sg.add_argument("--output", "-o", metavar="FILE", help="write here instead of replacing TRANSCRIPT.json")
    sg.set_defaults(func=cmd_sign)

    kg = s.add_parser(
        "keygen",
        help="make an Ed25519 key pair: PREFIX.key (private, 0600) and PREFIX.pub",
        description="Make an Ed25519 signing key pair as PEM files. Existing files are never "
        "overwritten. Keep PREFIX.key secret; give PREFIX.pub to whoever verifies.",
    )
    kg.add_argument("--output", "-o", required=True, metavar="PREFIX", help="writes PREFIX.key and PREFIX.pub")
    kg.add_argument(
        "--passphrase-env",
        metavar="VAR",
        help="encrypt the private key with the passphrase in environment variable VAR "
        "(then set AUDIOTOOLS_KEY_PASSPHRASE when signing)",
    )
    kg.set_defaults(func=cmd_keygen)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def cmd_verify(args) -> int:
    from audiotools.errors import InputError
    from audiotools.provenance.document import (
        document_problem,
        load_document,
        missing_exports,
        sibling_exports,
        summarize,
        verify,
    )
    from audiotools.provenance.signing import load_public_key, load_trusted_keys

    keys = [load_public_key(k) for k in args.public_key] + load_trusted_keys(args.trusted_keys)
    doc = load_document(args.transcript)
    problem = document_problem(doc)
    if problem:
        raise InputError(args.transcript, f"malformed transcript: {problem}")
    exports = [Path(e) for e in args.export]
    if args.exports:
        exports += [e for e in sibling_exports(args.transcript) if e not in exports]
    checks = verify(doc, audio_path=args.audio, exports=exports, trusted_keys=keys)
    if args.exports:  # the exports that are there are checked; those the output set lists must be there
        checks += missing_exports(args.transcript)
    failed = [c for c in checks if not c.ok]
    summary = summarize(doc, checks)
    if args.json:
        out = {
            "ok": not failed,
            "authenticated": summary["authenticated"],
            "exit_code": summary["exit_code"],
            "summary": summary,
            "transcript": str(args.transcript),
            "audio": args.audio,
            "transcript_sha256": (doc.get("provenance") or {}).get("transcript_sha256"),
            "failed": [c.name for c in failed],
            "checks": [c.to_dict() for c in checks],
        }
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
    else:
        _print_table(args, checks)
        print(
            "checks: "
            + ", ".join(f"{g} {summary[g]}" for g in ("integrity", "audio", "exports"))
            + f", signature {summary['signature']}"
        )
        if failed:
            print(f"FAILED: {len(failed)} check(s): {', '.join(c.name for c in failed)}")
        elif summary["authenticated"]:
            print("OK")
        elif summary["signature"] == "untrusted":
            print("NOT AUTHENTICATED: intact, but signed by a key no one vouched for (--public-key, --trusted-keys)")
        else:
            print("NOT AUTHENTICATED: intact, but not signed (anyone can recompute the hashes of an edited copy)")
    return summary["exit_code"]


def _print_table(args, checks) -> None:
    rows = []
    seg = [c for c in checks if c.name.startswith("segment ") and c.name.endswith(" sha256")]
    seg_ok = [c for c in seg if c.status == "ok"]
    summarised = False
    for c in checks:
        if c in seg_ok:  # passing segment checks: one summary row
            if not summarised:
                rows.append(("segment sha256", "ok", f"{len(seg_ok)} of {len(seg)} segments match the audio"))
                summarised = True
            continue
        rows.append((c.name, {"ok": "ok", "fail": "FAIL", "skip": "skip"}[c.status], c.detail))
    if not args.audio:
        rows.append(("audio", "skip", "no --audio: source, PCM and segment hashes not checked"))
    width = max(len(r[0]) for r in rows)
    print(f"transcript  {args.transcript}")
    if args.audio:
        print(f"audio       {args.audio}")
    for name, status, detail in rows:
        print(f"{status:<4}  {name:<{width}}  {detail}")


def cmd_sign(args) -> int:
    from audiotools.fileio import atomic_write_text
    from audiotools.provenance.document import load_document, sign

    doc = load_document(args.transcript)
    sig = sign(doc, args.key)
    out = Path(args.output or args.transcript)
    atomic_write_text(out, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    info(f"signed {out} with key {sig['key_id']}")
    return 0


def cmd_keygen(args) -> int:
    from audiotools.provenance.signing import keygen

    passphrase = None
    if args.passphrase_env:
        value = os.environ.get(args.passphrase_env)
        if not value:
            raise UsageError(f"--passphrase-env: environment variable {args.passphrase_env} is not set or empty")
        passphrase = value.encode("utf-8")
    priv, pub, kid = keygen(args.output, passphrase=passphrase)
    print(f"private key  {priv}  (mode 0600; keep it secret)")
    print(f"public key   {pub}")
    print(f"key_id       {kid}")
    return 0
