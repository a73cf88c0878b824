"""Speaker embeddings: the GE2E encoder (3-layer LSTM, 256-d) whose weights ship in the ``resemblyzer``
package, run by our own torch module (resemblyzer itself is never imported: its webrtcvad import
breaks on current setuptools). Weights load with ``weights_only=True``.

Front end as GE2E was trained: 16 kHz, 25 ms Hann window, 10 ms hop, 40 Slaney mel bands, power
(not log) spectrogram, volume normalised to -30 dBFS. An utterance embedding is the normalised mean
of embeddings of 1.6 s partial windows.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path

import numpy as np
import torch
from torch import nn

from audiotools.audio import SAMPLE_RATE
from audiotools.errors import ModelError

N_FFT = 400
HOP = 160
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s
PARTIAL_STEP_FRAMES = 76  # GE2E's rate of 1.3 partials per second
MODEL_ID = "ge2e-resemblyzer-256"


def weights_path() -> Path:
    """resemblyzer's pretrained.pt, checked against its sha256 (audiotools/weights.py: model home,
    installed package, or fetched on first use)."""
    from audiotools.weights import GE2E, locate

    return locate(GE2E)


class GE2EEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, 256, num_layers=3, batch_first=True)
        self.linear = nn.Linear(256, 256)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """(B, frames, 40) power mel -> (B, 256) L2-normalised embeddings."""
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True).clamp_min(1e-5)


@functools.lru_cache(maxsize=4)
def _mel_basis(device: str) -> torch.Tensor:
    """Slaney-style mel filterbank (as librosa's default), (40, 201)."""

    def hz_to_mel(f):
        f = np.asanyarray(f, dtype=np.float64)
        lin = f / (200.0 / 3)
        log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log_part, lin)

    def mel_to_hz(m):
        m = np.asanyarray(m, dtype=np.float64)
        lin = m * (200.0 / 3)
        log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
        return np.where(m >= 15.0, log_part, lin)

    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.zeros((N_MELS, len(fft_freqs)))
    for i in range(N_MELS):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : N_MELS + 2] - mel_f[:N_MELS])
    weights *= enorm[:, None]
    return torch.from_numpy(weights.astype(np.float32)).to(device)


def normalize_volume(samples: np.ndarray, target_dbfs: float = -30.0) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float32)))) if len(samples) else 0.0
    if rms < 1e-6:
        return samples
    gain = 10 ** ((target_dbfs - 20 * np.log10(rms)) / 20)
    return (samples * np.float32(gain)).astype(np.float32, copy=False)


class SpeakerEncoder:
    """Loaded GE2E encoder. Thread-safe for inference; one instance per device is cached."""

    _instances: dict[str, SpeakerEncoder] = {}
    _lock = threading.Lock()

    def __init__(self, device: str = "cpu"):
        path = weights_path()
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ModelError(f"{path}: cannot load speaker-embedding weights safely: {e}") from None
        state = ckpt.get("model_state", ckpt)
        state = {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}
        self.model = GE2EEncoder()
        self.model.load_state_dict(state)
        self.device = device
        self.model.to(device).eval()
        self.model_id = MODEL_ID
        self.weights_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        self.path = path

    @classmethod
    def get(cls, device: str = "cpu") -> SpeakerEncoder:
        with cls._lock:
            if device not in cls._instances:
                cls._instances[device] = cls(device)
            return cls._instances[device]

    # ------------------------------------------------------------- features
    def mel(self, samples: np.ndarray) -> torch.Tensor:
        """(frames, 40) power mel spectrogram of one signal."""
        x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).to(self.device)
        spec = torch.stft(
            x,
            N_FFT,
            HOP,
            window=torch.hann_window(N_FFT, device=self.device),
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        power = spec.abs() ** 2
        return (_mel_basis(str(self.device)) @ power).T.contiguous()

    @torch.inference_mode()
    def embed_mels(self, mels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        out = [self.model(mels[i : i + batch_size]) for i in range(0, len(mels), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, 256, device=self.device)

    # ------------------------------------------------------------- embeddings
    @staticmethod
    def partial_starts(n_frames: int, step: int = PARTIAL_STEP_FRAMES, min_coverage: float = 0.75) -> list[int]:
        if n_frames <= PARTIAL_FRAMES:
            return [0]
        starts = list(range(0, n_frames - PARTIAL_FRAMES + 1, step))
        last_end = starts[-1] + PARTIAL_FRAMES
        if (n_frames - last_end) > (1 - min_coverage) * PARTIAL_FRAMES:
            starts.append(n_frames - PARTIAL_FRAMES)
        return starts

    @torch.inference_mode()
    def embed_utterances(self, signals: list[np.ndarray], normalize: bool = True) -> np.ndarray:
        """One 256-d embedding per signal (mean of its partial embeddings, renormalised). Batched."""
        mels, owners = [], []
        for i, s in enumerate(signals):
            s = normalize_volume(s) if normalize else s
            m = self.mel(s)
            if m.shape[0] < PARTIAL_FRAMES:
                m = torch.nn.functional.pad(m, (0, 0, 0, PARTIAL_FRAMES - m.shape[0]))
            for st in self.partial_starts(m.shape[0]):
                mels.append(m[st : st + PARTIAL_FRAMES])
                owners.append(i)
        if not mels:
            return np.zeros((0, 256), dtype=np.float32)
        emb = self.embed_mels(torch.stack(mels))
        owners_t = torch.tensor(owners, device=emb.device)
        sums = torch.zeros(len(signals), emb.shape[1], device=emb.device).index_add_(0, owners_t, emb)
        out = sums / torch.linalg.vector_norm(sums, dim=1, keepdim=True).clamp_min(1e-8)
        return out.float().cpu().numpy()

    @torch.inference_mode()
    def embed_windows(
        self, samples: np.ndarray, step_frames: int = 40, normalize: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sliding 1.6 s windows over one signal: (centre times in s, (n, 256) embeddings)."""
        s = normalize_volume(samples) if normalize else samples
        m = self.mel(s)
        if m.shape[0] < PARTIAL_FRAMES:
            m = torch.nn.functional.pad(m, (0, 0, 0, PARTIAL_FRAMES - m.shape[0]))
        starts = list(range(0, m.shape[0] - PARTIAL_FRAMES + 1, step_frames)) or [0]
        windows = m.unfold(0, PARTIAL_FRAMES, step_frames).transpose(1, 2)  # (n, 160, 40)
        emb = self.embed_mels(windows.contiguous())
        centres = (np.array(starts[: len(emb)]) + PARTIAL_FRAMES / 2) * HOP / SAMPLE_RATE
        return centres, emb.float().cpu().numpy()
