"""How a window shorter than 30 s is padded (log_mel_batch ``padding``) and the loop guard, on real
Russian audio (../shared/data/russian) with the real base weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SHARED

from audiotools.asr.audio import HOP_LENGTH, N_SAMPLES, log_mel_batch
from audiotools.asr.windows import Window
from audiotools.audio.condition import simulate
from audiotools.audio.decode import load_audio

RUSSIAN = SHARED / "russian"


def _is_loop(text: str) -> bool:
    """A repetition loop in plain terms: some word (or syllable) makes up most of the text."""
    pieces = [p for p in text.lower().replace(",", " ").replace("-", " ").split() if p]
    return len(pieces) >= 6 and max(pieces.count(p) for p in set(pieces)) >= len(pieces) / 2


def test_zero_padding_zeroes_exactly_the_frames_after_the_chunk_as_openai_whisper_does():
    """Padding "zero" equals "floor" on the chunk's frames and is 0 from frame len // 160 on: the input
    openai-whisper's transcribe() gives the encoder for a short segment (log-mel of the audio with 30 s
    of zeros after it, cut to the segment's frames, pad_or_trim'd with zeros)."""
    from whisper.audio import log_mel_spectrogram, pad_or_trim

    clips = [load_audio(RUSSIAN / n).samples for n in ("transcribe_rs_russian.wav", "pisets_test_sound_ru.wav")]
    floor = log_mel_batch(clips, 80, padding="floor")
    zero = log_mel_batch(clips, 80, padding="zero")
    for i, c in enumerate(clips):
        n = len(c) // HOP_LENGTH
        assert 0 < n < 3000
        assert torch.equal(zero[i, :, :n], floor[i, :, :n])
        assert torch.count_nonzero(zero[i, :, n:]) == 0
        # floor: the frames after the chunk sit at the floor, (peak - 8 + 4) / 4, which is not 0
        assert torch.allclose(floor[i, :, n + 2 :], floor[i].min()) and float(floor[i].min()) < -0.5
        mel = log_mel_spectrogram(torch.from_numpy(c), 80, padding=N_SAMPLES)
        reference = pad_or_trim(mel[:, : mel.shape[-1] - 3000], 3000)
        torch.testing.assert_close(zero[i], reference, atol=2e-4, rtol=0)
    with pytest.raises(ValueError):
        log_mel_batch(clips, 80, padding="mean")


def test_a_sampled_loop_does_not_replace_unsure_text():
    """The 1 s telephone clip ("Проверка связи.") with zero padding fails the avg-logprob test at
    every temperature; at 0.8 the sampler loops ("пруды, пруды, ..." 54 tokens, avg logprob -0.6,
    better than the real attempts' -1.0). The kept attempt must be one that does not repeat."""
    from audiotools.asr.transcribe import TranscribeOptions, Transcriber

    x = simulate(load_audio(RUSSIAN / "transcribe_rs_russian.wav").samples, "telephone")
    tr = Transcriber(
        TranscribeOptions(model="base", device="cpu", language="ru", beam_size=5, mel_padding="zero", loop_guard=False)
    )
    segments, _, _ = tr.transcribe_samples(x)
    text = " ".join(s.text for s in segments)
    assert text.strip() and not _is_loop(text) and "пруды" not in text.lower(), text
    assert all(s.compression_ratio <= 2.4 for s in segments)


def test_loop_guard_reruns_a_looping_window_with_floor_padding():
    """The first 2 s of a real clip ("нейронные сети это хорошо"), decoded at temperature 0 only:
    from zero-padded features Whisper loops ("это ха-а-а-а-..."); the guard encodes that window again
    with floor padding, decodes it again and keeps that text, with word timestamps."""
    from audiotools.asr.transcribe import TranscribeOptions, Transcriber

    x = load_audio(RUSSIAN / "pisets_test_sound_ru.wav").samples
    window = [Window(0.0, 2.0)]

    def run(guard: bool):
        tr = Transcriber(
            TranscribeOptions(
                model="base", device="cpu", language="ru", mel_padding="zero", loop_guard=guard, temperatures=(0.0,)
            )
        )
        segments, _, _ = tr.transcribe_samples(x, list(window))
        return " ".join(s.text for s in segments), segments, tr.guard_counts

    looping, _, counts = run(False)
    assert _is_loop(looping), looping  # the real case: zero padding alone loops here
    assert counts == {"rerun": 0, "floor_kept": 0}
    text, segments, counts = run(True)
    assert counts == {"rerun": 1, "floor_kept": 1}
    assert not _is_loop(text) and "сет" in text.lower(), text
    words = [w for s in segments for w in s.words]
    assert words and all(0.0 <= w.start <= w.end <= 2.0 + 1e-6 for w in words)


def test_loop_guard_leaves_good_windows_and_floor_padding_alone():
    """A clean read sentence is not re-run; with floor padding the guard never runs."""
    from audiotools.asr.transcribe import TranscribeOptions, Transcriber

    x = load_audio(RUSSIAN / "voxforge_ru_0024.wav").samples
    for padding in ("zero", "floor"):
        tr = Transcriber(TranscribeOptions(model="base", device="cpu", language="ru", mel_padding=padding))
        segments, _, _ = tr.transcribe_samples(x)
        assert "пространстве" in " ".join(s.text for s in segments)
        assert tr.guard_counts == {"rerun": 0, "floor_kept": 0}
    assert np.isfinite([s.avg_logprob for s in segments]).all()
