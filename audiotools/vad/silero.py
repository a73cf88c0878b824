"""Voice activity detection with Silero VAD (the model file ships in the ``silero-vad`` package and is
checked against its sha256 in audiotools/weights.py).

Real recordings are often quiet (RMS 0.003-0.01) and far-field; the level is normalised before
detection so quiet speech is not reported as silence, and a slow gain control lifts a quiet talker's
stretches towards the loud ones (``VADOptions.gain_control_db``; :data:`PLAIN_VAD` turns it off).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from audiotools.audio import SAMPLE_RATE
from audiotools.audio.level import apply_gain, gain_curve
from audiotools.options import Options

_model_lock = threading.Lock()
_models: dict[str, object] = {}


@dataclass(frozen=True)
class VADOptions(Options):
    threshold: float = 0.45  # speech probability threshold
    min_speech_duration: float = 0.2  # seconds; shorter bursts are dropped
    min_silence_duration: float = 0.6  # seconds of silence that end a speech region
    speech_pad: float = 0.2  # seconds added on both sides of each region
    normalize: bool = True  # bring quiet recordings to a working level first
    target_level: float = 0.1  # RMS of the loud (speech) frames after normalisation
    max_gain_db: float = 40.0
    silence_floor_db: float = -75.0  # stretches quieter than this (dBFS, before normalisation) skip the model
    # slow gain control before the model (audiotools.audio.level, as the diariser's segmentation
    # hears): quiet stretches (a far or quiet talker) lifted towards the loud ones by at most this
    # many dB (0: off), the level measured over ``gain_window`` s
    gain_control_db: float = 12.0
    gain_window: float = 1.5


# Silero on the samples as they are (level normalisation only, no gain control): the speech the
# speaker embeddings use, whose calibration was fitted on it, and split mode's per-channel speech.
PLAIN_VAD = VADOptions(gain_control_db=0.0)


def _silero():
    """The ``silero_vad`` module. Importing it calls ``torch.set_num_threads(1)`` (silero_vad/model.py),
    which would leave Whisper running on one CPU thread for the rest of the process: every import
    goes through here and restores the caller's thread count."""
    import sys

    mod = sys.modules.get("silero_vad")
    if mod is not None:
        return mod
    import torch

    threads = torch.get_num_threads()
    try:
        import silero_vad
    finally:
        torch.set_num_threads(threads)
    return silero_vad


def load_vad_model(device: str = "cpu"):
    with _model_lock:
        if device not in _models:
            import torch

            from audiotools.weights import SILERO_VAD, locate

            model = torch.jit.load(str(locate(SILERO_VAD)), map_location="cpu").eval()  # silero's init_jit_model
            _models[device] = model.to(device) if device != "cpu" else model
        return _models[device]


FRAME_SAMPLES = 512  # one Silero probability per 32 ms
_CONTEXT = 64  # samples of the previous frame the model sees
_seq_cache: dict[str, object] = {}


def _sequence_model(model, device: str):
    """Silero's 16 kHz network as a plain (eager) torch module that takes a whole sequence of frames.

    Per frame the network is STFT -> 4 conv layers (no state across frames except 64 samples of
    context) -> an LSTMCell carrying state -> a 1x1 conv + sigmoid. Here the convolutional part runs
    batched over all frames and the LSTMCell becomes an nn.LSTM (same weights and gate order), so a
    block of frames costs a few tensor ops instead of one scripted call per 32 ms frame.
    """
    import torch
    from torch import nn

    with _model_lock:
        if device in _seq_cache:
            return _seq_cache[device]
        net = model._model

        class _Seq(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("basis", net.stft.forward_basis_buffer.detach().clone())
                self.hop = int(net.stft.hop_length)
                self.cutoff = int(net.stft.filter_length) // 2 + 1
                convs = []
                for layer in net.encoder.children():
                    c = layer.reparam_conv
                    conv = nn.Conv1d(
                        c.weight.shape[1],
                        c.weight.shape[0],
                        c.weight.shape[2],
                        stride=tuple(c.stride)[0],
                        padding=tuple(c.padding)[0],
                    )
                    conv.weight.data.copy_(c.weight)
                    conv.bias.data.copy_(c.bias)
                    convs += [conv, nn.ReLU()]
                self.encoder = nn.Sequential(*convs)
                cell = net.decoder.rnn
                self.lstm = nn.LSTM(cell.weight_ih.shape[1], cell.weight_hh.shape[1], batch_first=True)
                self.lstm.weight_ih_l0.data.copy_(cell.weight_ih)
                self.lstm.weight_hh_l0.data.copy_(cell.weight_hh)
                self.lstm.bias_ih_l0.data.copy_(cell.bias_ih)
                self.lstm.bias_hh_l0.data.copy_(cell.bias_hh)
                head = dict(net.decoder.decoder.named_children())["2"]
                self.head = nn.Conv1d(head.weight.shape[1], head.weight.shape[0], 1)
                self.head.weight.data.copy_(head.weight)
                self.head.bias.data.copy_(head.bias)

            def forward(self, chunks, state=None):
                """chunks: (frames, 64 + 512) -> (probabilities (frames,), LSTM state)."""
                x = torch.nn.functional.pad(chunks, (0, 64), mode="reflect").unsqueeze(1)
                spec = torch.nn.functional.conv1d(x, self.basis, stride=self.hop)
                re, im = spec[:, : self.cutoff], spec[:, self.cutoff :]
                feats = self.encoder(torch.sqrt(re * re + im * im)).squeeze(-1)  # (frames, 128)
                h, state = self.lstm(feats.unsqueeze(0), state)
                p = torch.sigmoid(self.head(torch.relu(h[0]).unsqueeze(-1))).squeeze(1).mean(-1)
                return p, state

        seq = _Seq().to(device).eval()
        _seq_cache[device] = seq
        return seq


def speech_probabilities(
    samples: np.ndarray, options: VADOptions | None = None, block_seconds: float = 64.0, device: str = "cpu"
) -> np.ndarray:
    """Silero speech probability per 512-sample frame (32 ms), the same values as feeding the model
    frame by frame (``get_speech_timestamps``), computed in blocks: the per-frame convolutional
    encoder runs batched and only the decoder's LSTM runs as a sequence (carrying its state across
    blocks), so there is no Python loop per frame. Frame ``i`` covers samples ``[512 i, 512 (i+1))``."""
    import torch

    options = options or VADOptions()
    n = (len(samples) + FRAME_SAMPLES - 1) // FRAME_SAMPLES
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    # the level gain of normalize_level and the gain control's curve, applied block by block (no
    # full-length copy of long audio)
    gain = level_gain(samples, options.target_level, options.max_gain_db) if options.normalize else 1.0
    curve = gain_curve(samples, options.gain_window, options.gain_control_db)
    seq = _sequence_model(load_vad_model(device), device)
    block = max(1, int(block_seconds * SAMPLE_RATE) // FRAME_SAMPLES)
    out = np.empty(n, dtype=np.float32)
    state = None
    prev = torch.zeros(_CONTEXT, device=device)
    with torch.inference_mode():
        for b0 in range(0, n, block):
            b1 = min(n, b0 + block)
            chunk = np.asarray(samples[b0 * FRAME_SAMPLES : b1 * FRAME_SAMPLES], dtype=np.float32)
            if curve is not None:
                chunk = apply_gain(chunk, curve, b0 * FRAME_SAMPLES)
            if gain != 1.0 or curve is not None:
                chunk = np.clip(chunk * np.float32(gain), -1.0, 1.0)
            x = torch.from_numpy(np.ascontiguousarray(chunk)).to(device)
            if len(x) < (b1 - b0) * FRAME_SAMPLES:
                x = torch.nn.functional.pad(x, (0, (b1 - b0) * FRAME_SAMPLES - len(x)))
            chunks = torch.cat([prev, x]).unfold(0, FRAME_SAMPLES + _CONTEXT, FRAME_SAMPLES)
            prev = x[-_CONTEXT:]
            probs, state = seq(chunks, state)
            out[b0:b1] = probs.float().cpu().numpy()
    return out


def speech_level(samples: np.ndarray, frame: int = 320) -> float:
    """RMS of the loud frames (90th percentile of 20 ms frame RMS): a level estimate for speech."""
    n = len(samples) // frame
    if n == 0:
        return float(np.sqrt(np.mean(np.square(samples, dtype=np.float32)))) if len(samples) else 0.0
    frames = samples[: n * frame].reshape(n, frame)
    rms = np.empty(n, dtype=np.float32)
    block = 1 << 14  # frames per block: no full-length temporary for long files
    for i in range(0, n, block):
        rms[i : i + block] = np.sqrt(np.mean(np.square(frames[i : i + block], dtype=np.float32), axis=1))
    return float(np.percentile(rms, 90))


def level_gain(samples: np.ndarray, target: float = 0.1, max_gain_db: float = 40.0) -> float:
    """The gain ``normalize_level`` applies (1.0 when it leaves the samples alone)."""
    level = speech_level(samples)
    if level <= 1e-6:
        return 1.0
    gain = min(target / level, 10 ** (max_gain_db / 20))
    return 1.0 if 0.7 < gain < 1.4 else float(gain)


def normalize_level(samples: np.ndarray, target: float = 0.1, max_gain_db: float = 40.0) -> np.ndarray:
    gain = level_gain(samples, target, max_gain_db)
    if gain == 1.0:
        return samples
    out = samples * np.float32(gain)
    np.clip(out, -1.0, 1.0, out=out)
    return out


def active_spans(
    samples: np.ndarray, floor_db: float = -75.0, frame: int = 1600, pad: float = 1.0
) -> list[tuple[int, int]]:
    """Sample spans that are not near-digital silence (100 ms frames above ``floor_db`` dBFS), padded.

    A cheap vectorised gate: hours of dead air (muted line, gaps in a wiretap) never reach the model.
    """
    n = len(samples) // frame
    if n == 0:
        return [(0, len(samples))] if len(samples) else []
    frames = samples[: n * frame].reshape(n, frame)
    peak = np.maximum(frames.max(axis=1), -frames.min(axis=1))  # no full-size temporary
    loud = peak > 10 ** (floor_db / 20)
    if len(samples) > n * frame and np.abs(samples[n * frame :]).max() > 10 ** (floor_db / 20):
        loud = np.append(loud, True)
    pad_f = int(pad * SAMPLE_RATE / frame)
    spans: list[tuple[int, int]] = []
    idx = np.flatnonzero(loud)
    if len(idx) == 0:
        return []
    start = prev = idx[0]
    for i in idx[1:]:
        if i - prev > 2 * pad_f + 1:
            spans.append((start, prev))
            start = i
        prev = i
    spans.append((start, prev))
    out = []
    for a, b in spans:
        out.append((max(0, (a - pad_f) * frame), min(len(samples), (b + 1 + pad_f) * frame)))
    return out


def reusable_speech(
    regions: list[tuple[float, float]] | None, options: VADOptions | None
) -> list[tuple[float, float]] | None:
    """``regions`` when ``options`` are :data:`PLAIN_VAD`, i.e. they are exactly the speech the
    speaker steps (identification) compute for themselves and may reuse; else None."""
    return regions if regions is not None and (options or VADOptions()) == PLAIN_VAD else None


def speech_regions(samples: np.ndarray, options: VADOptions | None = None) -> list[tuple[float, float]]:
    """Speech regions as (start, end) seconds, sorted and non-overlapping.

    Silero's ``get_speech_timestamps`` per active span, computed as its two halves: the frame
    probabilities come from the batched ``speech_probabilities`` (no scripted model call per 32 ms
    frame) and go through Silero's own ``get_speech_timestamps_from_probs``."""
    from_probs = _silero().utils_vad.get_speech_timestamps_from_probs

    options = options or VADOptions()
    if len(samples) < SAMPLE_RATE // 10:
        return []
    spans = active_spans(samples, options.silence_floor_db)
    regions: list[tuple[float, float]] = []
    for a, b in spans:
        probs = speech_probabilities(samples[a:b], options)  # level-normalised per span
        stamps = from_probs(
            probs.tolist(),
            sampling_rate=SAMPLE_RATE,
            threshold=options.threshold,
            min_speech_duration_ms=int(options.min_speech_duration * 1000),
            min_silence_duration_ms=int(options.min_silence_duration * 1000),
            speech_pad_ms=int(options.speech_pad * 1000),
            audio_length_samples=b - a,
        )
        regions.extend(((s["start"] + a) / SAMPLE_RATE, (s["end"] + a) / SAMPLE_RATE) for s in stamps)
    return regions
