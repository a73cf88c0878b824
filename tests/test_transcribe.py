"""Transcription with the real default weights on real audio."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import JFK, JFK_TEXT, ROOT, SAMPLES, wer

from audiotools.asr.windows import make_windows
from audiotools.audio.decode import load_audio


def test_jfk_wer_and_word_timestamps(base_transcriber):
    t = base_transcriber.transcribe(load_audio(JFK))
    assert t.language == "en"
    assert wer(JFK_TEXT, t.text) <= 0.05, t.text
    words = [w for s in t.segments for w in s.words]
    assert len(words) >= 20
    prev_end = 0.0
    for s in t.segments:
        assert s.start <= s.end
        for w in s.words:
            assert s.start - 1e-6 <= w.start <= w.end <= s.end + 1e-6, (s, w)
            assert w.start >= prev_end - 1e-6, "word timestamps must be monotonic"
            prev_end = w.end
            assert 0.0 <= w.probability <= 1.0
    # "country." is the last word and ends near 10.4 s (speech ends at ~10.5 s in the recording)
    assert words[-1].word.strip().startswith("country") and 9.5 < words[-1].end < 11.0
    # "ask" after the pause at ~2.5-3.3 s starts after the pause
    asks = [w for w in words if w.word.strip().lower().startswith("ask")]
    assert 2.9 < asks[0].start < 3.8


def test_silence_produces_no_text(base_transcriber):
    """20 s of low noise: VAD finds no speech, so no hallucinated text."""
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(16000 * 20) * 0.001).astype(np.float32)
    segments, _, stats = base_transcriber.transcribe_samples(noise)
    assert segments == [] and stats["windows"] == 0


def test_phone_band_8khz_audio(base_transcriber, tmp_path):
    """JFK at 8 kHz µ-law, telephone band (as a phone call arrives): still transcribed well."""
    out = tmp_path / "jfk8k.wav"
    subprocess.run(["sox", str(JFK), "-r", "8000", "-c", "1", "-e", "u-law", str(out), "sinc", "300-3400"], check=True)
    a = load_audio(out)
    assert a.info.source_sample_rate == 8000
    t = base_transcriber.transcribe(a)
    assert wer(JFK_TEXT, t.text) <= 0.15, t.text


def test_russian_with_forced_language():
    """espeak-ng's synthetic Russian is detected as Polish (by openai-whisper too), so the user forces
    ``--language ru``; the text then comes out in Cyrillic with the key words right."""
    from audiotools.asr.transcribe import TranscribeOptions, Transcriber

    t = Transcriber(TranscribeOptions(model="base", device="cpu", language="ru")).transcribe(
        load_audio(SAMPLES / "russian.wav")
    )
    assert t.language == "ru"
    text = t.text.lower()
    assert len(re.findall("[а-яё]", text)) > 0.9 * len(re.findall("[a-zа-яё]", text))
    for word in ("минск", "дождь", "погоду"):
        assert word in text, text


def test_windows_merge_and_split():
    regions = [(0.0, 5.0), (6.0, 12.0), (13.0, 50.0), (80.0, 81.0)]
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal(16000 * 82) * 0.1).astype(np.float32)
    samples[16000 * 30 : 16000 * 31] *= 0.001  # a pause inside the long region: the split should land there
    w = make_windows(regions, samples)
    assert all(x.duration <= 30.0 + 1e-6 for x in w)
    assert w[0].start == 0.0 and w[-1] == type(w[-1])(80.0, 81.0)
    cut = [x.end for x in w if 13.0 < x.end < 50.0]
    assert cut and 29.9 <= cut[0] <= 31.1
    # coverage: every region second is inside some window
    for s, e in regions:
        for t in np.arange(s, e, 0.5):
            assert any(x.start <= t <= x.end for x in w)


@pytest.mark.parametrize("model_name", ["tiny.en", "base"])
def test_ct2_converted_model_matches_faster_whisper(model_name, tmp_path):
    """The same CTranslate2 weights give the same text in audiotools (torch) and faster-whisper."""
    from faster_whisper import WhisperModel

    from audiotools.asr.models import ct2_files, resolve
    from audiotools.asr.transcribe import TranscribeOptions, Transcriber

    src = resolve(model_name, allow_download=False)
    bins, cfg_dir = ct2_files(src)
    d = tmp_path / "ct2"
    d.mkdir()
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
        if (cfg_dir / f).exists():
            shutil.copy(cfg_dir / f, d / f)
    with open(d / "model.bin", "wb") as out:  # faster-whisper needs one model.bin: join the parts
        for b in bins:
            out.write(b.read_bytes())
    fw = WhisperModel(str(d), device="cpu", compute_type="float32", cpu_threads=2)
    segs, _ = fw.transcribe(
        str(JFK), language="en", beam_size=1, temperature=0.0, condition_on_previous_text=False, vad_filter=False
    )
    fw_text = " ".join(s.text.strip() for s in segs)
    ours = Transcriber(
        TranscribeOptions(
            model=model_name, device="cpu", language="en", vad=False, word_timestamps=False, temperatures=(0.0,)
        )
    )
    segments, _, _ = ours.transcribe_samples(load_audio(JFK).samples)
    our_text = " ".join(s.text.strip() for s in segments)
    # same words; a borderline punctuation token (a comma) can flip between CTranslate2's and torch's
    # float32 arithmetic, so compare after openai-whisper's normaliser (case and punctuation)
    from whisper.normalizers import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    assert norm(our_text) == norm(fw_text) and norm(our_text).split()[:4] == ["and", "so", "my", "fellow"]


def test_three_hour_file_bounded_memory(tmp_path):
    """3 h of dead air with JFK in the middle: correct transcript at 1:30:00, peak RSS well under 3 GB."""
    speech = load_audio(JFK).samples
    p = tmp_path / "three_hours.flac"
    with sf.SoundFile(p, "w", 16000, 1, subtype="PCM_16") as f:
        block = np.zeros(16000 * 600, dtype=np.float32)
        for i in range(18):
            if i == 9:
                b = block.copy()
                b[: len(speech)] = speech
                f.write(b)
            else:
                f.write(block)
    # peak RSS from VmHWM, which exec resets: ru_maxrss keeps the peak of the process that spawned
    # the child (here pytest, which holds several models by then), so it measured the parent
    code = (
        "import sys, json; from audiotools.cli import main; rc = main(['-q', 'transcribe', sys.argv[1],"
        " '-o', sys.argv[2], '-f', 'json', '--no-diarize']);"
        " hwm = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')][0];"
        " print(json.dumps({'rc': rc, 'rss': hwm}))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(p), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["rc"] == 0
    assert res["rss"] < 2.5e6, f"peak RSS {res['rss'] / 1e6:.2f} GB"  # KiB
    doc = json.loads((tmp_path / "out" / "three_hours.json").read_text())
    assert doc["audio"]["duration"] == 10800.0
    assert doc["segments"] and all(5399.5 < s["start"] < 5412 for s in doc["segments"])
    assert wer(JFK_TEXT, " ".join(s["text"] for s in doc["segments"])) <= 0.05


def test_voice_detection_leaves_torch_thread_count_alone():
    """silero_vad's import sets torch to one thread; after VAD, Whisper must still get them all."""
    import subprocess
    import sys

    code = (
        "import numpy as np, torch; torch.set_num_threads(2)\n"
        "from audiotools.vad.silero import speech_regions, load_vad_model\n"
        "speech_regions(np.random.default_rng(0).standard_normal(16000 * 3).astype('float32') * 0.1)\n"
        "load_vad_model()\n"
        "print(torch.get_num_threads())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"


@pytest.mark.parametrize("width", [1, 3, 7, 9])
def test_median_filter_equals_openai_whisper(width):
    """The sort-free median filter of the word-alignment pass gives openai-whisper's values exactly."""
    import torch
    from whisper.timing import median_filter as reference

    from audiotools.asr.timing import median_filter

    gen = torch.Generator().manual_seed(width)
    for shape in [(6, 40, 700), (3, 5, width // 2 + 1), (2, 4, 2), (1, 1, 12)]:
        x = torch.round(torch.randn(*shape, generator=gen) * 4) / 4  # coarse values: many ties
        assert torch.equal(median_filter(x, width), reference(x, width)), shape
