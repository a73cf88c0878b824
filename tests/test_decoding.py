"""Decoding internals against openai-whisper's own: the batched timestamp rules and the CPU weight
layout must not change a single logit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from whisper.decoding import ApplyTimestampRules
from whisper.tokenizer import get_tokenizer

from audiotools.asr.decoding import _BatchedTimestampRules
from audiotools.asr.transcribe import decode_options


def _histories(tok, rng: np.random.Generator, batch: int, length: int, sample_begin: int) -> torch.Tensor:
    """Token rows: the SOT prompt, then a random mix of text tokens, timestamps (often increasing,
    sometimes repeated or decreasing) and pairs of timestamps."""
    tb = tok.timestamp_begin
    rows = []
    for _ in range(batch):
        row = list(tok.sot_sequence)[:sample_begin]
        t = int(rng.integers(0, 20))
        while len(row) < sample_begin + length:
            r = rng.random()
            if r < 0.55:
                row.append(int(rng.integers(0, tok.eot)))
            elif r < 0.8:
                t = max(0, t + int(rng.integers(-3, 30)))
                row.append(tb + min(t, 1500))
            else:
                t = min(1500, t + int(rng.integers(0, 30)))
                row += [tb + t, tb + t]
        rows.append(row[: sample_begin + length])
    return torch.tensor(rows)


@pytest.mark.parametrize("multilingual", [False, True])
@pytest.mark.parametrize("length", [0, 1, 2, 5, 17])
def test_batched_timestamp_rules_equal_openai_whisper(multilingual, length):
    tok = get_tokenizer(multilingual, language="en" if multilingual else None, task="transcribe")
    sample_begin = len(tok.sot_sequence)
    n_vocab = 51865 if multilingual else 51864
    rng = np.random.default_rng(length + 100 * multilingual)
    batch = 24
    tokens = _histories(tok, rng, batch, length, sample_begin)
    logits = torch.from_numpy(rng.normal(0, 3, (batch, n_vocab)).astype(np.float32))
    # some rows where the timestamps together outweigh every text token, some where one text token wins
    logits[: batch // 3, tok.timestamp_begin :] += 4.0
    logits[batch // 3 : batch // 2, 11] += 40.0
    for max_initial in (None, 50):
        ref, got = logits.clone(), logits.clone()
        ApplyTimestampRules(tok, sample_begin, max_initial).apply(ref, tokens)
        _BatchedTimestampRules(tok, sample_begin, max_initial).apply(got, tokens)
        assert torch.equal(torch.isinf(ref), torch.isinf(got))
        assert torch.equal(ref, got)
        masked = torch.isinf(got).sum(dim=1)
        if length:
            assert masked.min() < masked.max()  # the rows really differ in what they mask


def test_column_major_weights_same_outputs_one_vocabulary_copy():
    from whisper.model import ModelDimensions, Whisper

    from audiotools.asr.quantize import output_logits
    from audiotools.asr.weight_layout import column_major_linears

    torch.manual_seed(0)
    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=64,
        n_audio_state=64,
        n_audio_head=4,
        n_audio_layer=2,
        n_vocab=51864,
        n_text_ctx=32,
        n_text_state=64,
        n_text_head=4,
        n_text_layer=2,
    )
    torch.manual_seed(0)
    model = Whisper(dims).eval()
    with torch.no_grad():
        for p in model.parameters():  # some of openai-whisper's parameters start uninitialised
            p.copy_(torch.randn_like(p) * 0.1)
    mel = torch.randn(3, 80, 128)
    tokens = torch.randint(0, 50000, (3, 7))
    with torch.no_grad():
        ref_audio = model.encoder(mel)
        ref_logits = model.decoder(tokens, ref_audio)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    n_bytes = sum(p.untyped_storage().nbytes() for p in model.parameters())
    column_major_linears(model)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(m.weight.t().is_contiguous() for m in linears)
    # the embedding keeps its rows; its one extra copy is the column-major one for one-row steps
    emb = model.decoder.token_embedding.weight
    assert emb.is_contiguous() and torch.equal(model.decoder.vocab_columns, emb.t())
    assert model.decoder.vocab_columns.is_contiguous()
    assert {n: p.shape for n, p in model.named_parameters()} == shapes
    assert sum(p.untyped_storage().nbytes() for p in model.parameters()) == n_bytes
    with torch.no_grad():
        audio = model.encoder(mel)
        logits = model.decoder(tokens, audio)
        # the vocabulary projection in both forms (one row; several) equals x @ E^T
        for shape in ((1, 1, 64), (1, 5, 64), (3, 7, 64)):
            h = torch.randn(shape)
            torch.testing.assert_close(output_logits(model.decoder, h), h @ emb.t(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(audio, ref_audio, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-4)
    # a state dict saved from it loads into a fresh module
    fresh = Whisper(dims)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.decoder.token_embedding.weight, model.decoder.token_embedding.weight)


def test_alignment_same_with_and_without_the_decoding_cross_attention_cache(tiny_transcriber, monkeypatch):
    """find_alignments takes the decoding's cross-attention keys/values as a slice (contiguous rows),
    a gathered copy (rows with gaps) or projects the features itself: the same words and times.
    The decoding hands its projections on when it makes them (the "kv" path of decoder_step.py,
    which CUDA and int8 models take; forced here on the CPU)."""
    from conftest import JFK

    import audiotools.asr.decoder_step as decoder_step

    monkeypatch.setattr(decoder_step, "cross_from_features", lambda model: False)

    from audiotools.asr.decoding import decode_windows
    from audiotools.asr.timing import AlignJob, find_alignments, num_frames_for, split_segments, text_tokens_of
    from audiotools.audio.decode import load_audio

    t = tiny_transcriber
    samples = load_audio(JFK).samples
    chunks = [samples, samples[: 16000 * 6], samples[16000 * 4 :]]
    with torch.inference_mode():
        features = t._encode(chunks)
        cross_kv: dict = {}
        results = decode_windows(t.model, features, ["en"] * 3, decode_options(t.options), cross_kv=cross_kv)
    assert cross_kv and all(v.shape[0] == 3 for v in cross_kv.values())
    tok = t.tokenizer("en")

    def jobs(rows):
        out = []
        for k in rows:
            segs = split_segments(results[k].tokens, tok, 0.0, len(chunks[k]) / 16000)
            out.append(
                AlignJob(tok, text_tokens_of(segs, tok), features[k], num_frames_for(len(chunks[k]) / 16000), row=k)
            )
        return out

    def words(alignment):
        return [[(w.word, round(float(w.start), 2), round(float(w.end), 2)) for w in a] for a in alignment]

    with torch.inference_mode():
        projected = words(find_alignments(t.model, jobs([0, 1, 2])))
        sliced = words(find_alignments(t.model, jobs([0, 1, 2]), cross_kv=cross_kv))
        gathered = words(find_alignments(t.model, jobs([0, 2]), cross_kv=cross_kv))
    assert all(len(a) >= 5 for a in projected)
    assert sliced == projected
    assert gathered == [projected[0], projected[2]]
    assert [w for w, _, _ in projected[0]][:3] == [" And", " so", " my"]


def _jfk_windows(t):
    from conftest import JFK

    from audiotools.audio.decode import load_audio

    samples = load_audio(JFK).samples
    # three lengths: the short windows end first and are dropped from the batch mid-loop
    chunks = [samples, samples[: 16000 * 3], samples[16000 * 4 :]]
    with torch.inference_mode():
        return t._encode(chunks)


def test_cross_attention_from_features_same_as_projected_keys_values(tiny_transcriber, monkeypatch):
    """decoder_step computes the cross-attention from the encoder output on a float32 CPU model and
    from projected keys/values otherwise: the same logits (to float rounding) and the same tokens,
    batched (rows dropped as windows end) or one window at a time."""
    import audiotools.asr.decoder_step as decoder_step
    from audiotools.asr.decoding import decode_windows

    t = tiny_transcriber
    features = _jfk_windows(t)
    opts = decode_options(t.options)
    assert decoder_step.cross_from_features(t.model)
    tok = t.tokenizer("en")
    prompt = torch.tensor([list(tok.sot_sequence)] * 3)

    def run():
        with torch.inference_mode():
            pairs = [tuple(p) for p in t.model.alignment_heads.indices().T.tolist()]
            step = decoder_step.StepDecoder(t.model, keep_projections=True, align_pairs=pairs)
            first = step.logits(prompt, features)
            qk_first = step.last_qk
            nxt = step.logits(torch.cat([prompt, first[:, -1:].argmax(-1)], 1), features)
            qks = (qk_first, step.last_qk)
            batched = [r.tokens for r in decode_windows(t.model, features, ["en"] * 3, opts, cross_kv={})]
            alone = [decode_windows(t.model, features[k : k + 1], ["en"], opts)[0].tokens for k in range(3)]
        return step, first, nxt, batched, alone, qks

    f_step, f_first, f_next, f_batched, f_alone, f_qks = run()
    monkeypatch.setattr(decoder_step, "cross_from_features", lambda model: False)
    k_step, k_first, k_next, k_batched, k_alone, k_qks = run()
    assert (f_step.cross, k_step.cross) == ("features", "kv")
    assert f_step.projected == {} and len(k_step.projected) == 2 * t.model.dims.n_text_layer
    assert torch.allclose(f_first, k_first, atol=1e-3, rtol=1e-4)
    assert torch.allclose(f_next, k_next, atol=1e-3, rtol=1e-4)
    # the alignment heads' logits kept for word timings: (B, T, heads, frames), the same both ways
    n_pairs = t.model.alignment_heads.indices().shape[1]
    assert f_qks[0].shape == (3, prompt.shape[1], n_pairs, 1500) and f_qks[1].shape[1] == 1
    for a, b in zip(f_qks, k_qks):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-4)
    assert f_batched == k_batched == f_alone == k_alone
    assert len(f_batched[0]) > 20 and len(f_batched[1]) < len(f_batched[0])


@pytest.mark.parametrize("cross", ["features", "kv"])
def test_beam_search_and_sampling_on_the_step_decoder_equal_openai_whisper(tiny_transcriber, monkeypatch, cross):
    """Beam search and best-of-n sampling run openai-whisper's loop on the step decoder, which keeps
    each window's cross-attention state once for its rows: the same tokens and log-probabilities as
    openai-whisper's own ``PyTorchInference`` (a copy of every window's keys and values per row), for
    three windows of different lengths at once; the "kv" form also hands on one projection per window."""
    import whisper.decoding as wd

    import audiotools.asr.decoder_step as decoder_step
    from audiotools.asr.decoding import _Task

    if cross == "kv":
        monkeypatch.setattr(decoder_step, "cross_from_features", lambda model: False)

    class OpenaiLoop(_Task):
        def _main_loop(self, audio_features, tokens):
            return wd.DecodingTask._main_loop(self, audio_features, tokens)

    t = tiny_transcriber
    features = _jfk_windows(t)
    for options in (
        wd.DecodingOptions(language="en", beam_size=3, fp16=False),
        wd.DecodingOptions(language="en", temperature=0.8, best_of=3, fp16=False),
    ):
        runs = []
        for cls in (OpenaiLoop, _Task):
            task = cls(t.model, options)
            task.keep_projections = True
            torch.manual_seed(0)
            with torch.inference_mode():
                runs.append((task, task.run(features)))
        (_, ref), (task, ours) = runs
        assert [r.tokens for r in ours] == [r.tokens for r in ref]
        assert np.allclose([r.avg_logprob for r in ours], [r.avg_logprob for r in ref], atol=1e-4)
        assert len(ref[0].tokens) > 20 and len({len(r.tokens) for r in ref}) == 3
        if cross == "kv":
            assert len(task.cross_kv) == 2 * t.model.dims.n_text_layer
            assert all(v.shape[0] == 3 for v in task.cross_kv.values())
        else:
            assert task.cross_kv == {}


def test_step_decoder_rearranges_beam_rows():
    """Beam search's survivors: row i continues from row source[i]; the cached positions move with
    it, the identity order leaves the caches untouched."""
    from audiotools.asr.decoder_step import StepDecoder

    step = StepDecoder.__new__(StepDecoder)
    keys = torch.arange(4.0)[:, None, None] + torch.zeros(4, 8, 6)
    keys[:, 5:] = -1.0  # capacity beyond the 5 cached positions
    step.self_kv, step.length = [[keys, keys * 10]], 5
    step.rearrange_kv_cache([0, 1, 2, 3])
    assert step.self_kv[0][0] is keys
    step.rearrange_kv_cache([2, 2, 0, 3])
    for buf, scale in zip(step.self_kv[0], (1, 10)):
        assert buf.shape == (4, 8, 6)
        assert [float(buf[r, 0, 0]) for r in range(4)] == [2.0 * scale, 2.0 * scale, 0.0, 3.0 * scale]
        assert all(bool((buf[r, :5] == buf[r, 0, 0]).all()) for r in range(4))


def test_step_decoder_keep_rows_moves_whole_rows():
    """Dropping ended rows: each filler row lands on its hole in every cache, the rest stay put."""
    from audiotools.asr.decoder_step import StepDecoder

    step = StepDecoder.__new__(StepDecoder)
    step.self_kv = [
        [
            torch.arange(5.0)[:, None, None].repeat(1, 4, 6) + 0,
            torch.arange(5.0)[:, None, None] * 10 + torch.zeros(5, 4, 6),
        ]
    ]
    step.xt = torch.arange(5.0)[:, None, None] + torch.zeros(5, 6, 7)
    step.cross_kv = {"k": torch.arange(5.0)[:, None, None, None] + torch.zeros(5, 2, 7, 3)}
    # rows 1 and 3 ended; 5 rows -> 3: row 4 fills hole 1 (row 3 is beyond n_keep)
    step.keep_rows(torch.tensor([1]), torch.tensor([4]), 3)
    for t, scale in ((step.self_kv[0][0], 1), (step.self_kv[0][1], 10), (step.xt, 1), (step.cross_kv["k"], 1)):
        assert t.shape[0] == 3
        assert [float(t[r].flatten()[0]) for r in range(3)] == [0.0, 4.0 * scale, 2.0 * scale]
        assert all(bool((t[r] == t[r].flatten()[0]).all()) for r in range(3))


def _words_by_method(method: str, **options):
    from conftest import JFK, ROOT

    from audiotools.asr.transcribe import EngineItem, TranscribeOptions, Transcriber
    from audiotools.audio.decode import load_audio

    tr = Transcriber(TranscribeOptions(model="tiny.en", device="cpu", language="en", word_alignment=method, **options))
    items = [
        EngineItem(k, load_audio(p).samples, language="en")
        for k, p in enumerate([JFK, ROOT / "samples" / "conversation.wav"])
    ]
    words = {k: [w for s in segs for w in s.words] for k, segs, _, _ in tr.transcribe_many(items)}
    return words, tr.alignment_counts


def test_word_timestamps_from_the_decoding_agree_with_the_alignment_pass():
    """Word timings from the cross-attention kept while decoding (no second pass) against
    openai-whisper's separate alignment pass: the same words, starts and ends within a few
    frames for nearly every word (the corpus of benchmarks/batch.py: median 0, p90 40 ms)."""
    fast, fast_counts = _words_by_method("decoding")
    ref, ref_counts = _words_by_method("pass")
    assert fast_counts["pass"] == 0 and fast_counts["decoding"] >= 3
    assert ref_counts["decoding"] == 0 and ref_counts["pass"] == fast_counts["decoding"]
    starts, ends = [], []
    for k in ref:
        assert [w.word for w in fast[k]] == [w.word for w in ref[k]] and len(ref[k]) >= 20
        starts += [abs(a.start - b.start) for a, b in zip(fast[k], ref[k])]
        ends += [abs(a.end - b.end) for a, b in zip(fast[k], ref[k])]
        assert all(a.start <= a.end for a in fast[k])
        assert all(a.end <= b.start + 1e-6 for a, b in zip(fast[k], fast[k][1:])), "monotonic"
        assert all(0 < a.probability <= 1 for a in fast[k])
    assert np.median(starts) <= 0.02 and np.median(ends) <= 0.02
    assert np.mean(np.array(starts) <= 0.1) >= 0.9 and np.mean(np.array(ends) <= 0.1) >= 0.9
    assert max(starts + ends) < 1.0


def test_windows_decoded_by_sampling_get_the_alignment_pass():
    """Only a greedy pass keeps its cross-attention: a window decoded by sampling (here every
    window: the first temperature is 0.2) or beam search is aligned by the separate pass."""
    sampled, counts = _words_by_method("decoding", temperatures=(0.2,))
    assert counts["decoding"] == 0 and counts["pass"] >= 3
    assert all(len(w) >= 20 for w in sampled.values())
    beam, counts = _words_by_method("decoding", beam_size=2)
    assert counts["decoding"] == 0 and counts["pass"] >= 3 and all(len(w) >= 20 for w in beam.values())


def test_word_timings_from_decoding_refuses_what_it_cannot_align():
    """None (the caller then runs the pass) when the decoding has no EOT step or other text."""
    from audiotools.asr.timing import word_timings_from_decoding

    tok = get_tokenizer(False, language="en", task="transcribe")
    text = tok.encode(" ask not what your country can do")
    sampled = [tok.timestamp_begin] + text + [tok.timestamp_begin + 100]
    prompt = len(tok.sot_sequence)
    n_pos = prompt + len(sampled)  # the prompt, then a query per step up to EOT
    qk = torch.randn(n_pos, 4, 1500, generator=torch.Generator().manual_seed(0))
    lps = [-0.1] * (len(sampled) + 1)
    words = word_timings_from_decoding(tok, sampled, text, qk, lps, prompt, 600)
    assert [w.word for w in words] == [" ask", " not", " what", " your", " country", " can", " do"]
    assert all(abs(w.probability - np.exp(-0.1)) < 1e-6 for w in words)
    assert word_timings_from_decoding(tok, sampled, text, qk[:-1], lps, prompt, 600) is None  # no EOT step
    assert word_timings_from_decoding(tok, sampled, text[:-1], qk, lps, prompt, 600) is None  # other text
    assert word_timings_from_decoding(tok, sampled, text, None, None, prompt, 600) is None


def test_word_timestamps_from_the_decoding_with_an_initial_prompt():
    """An initial prompt precedes the SOT sequence in the decoding (not in the pass): its rows are
    left out, and the timings still agree with the pass."""
    prompt = "Anna, Boris and Clara discuss the town budget."
    fast, counts = _words_by_method("decoding", initial_prompt=prompt)
    ref, _ = _words_by_method("pass", initial_prompt=prompt)
    assert counts["decoding"] >= 3 and counts["pass"] == 0
    for k in ref:
        assert [w.word for w in fast[k]] == [w.word for w in ref[k]]
        d = np.array([abs(a.start - b.start) for a, b in zip(fast[k], ref[k])])
        assert np.median(d) <= 0.02 and (d <= 0.1).mean() >= 0.9


def test_sampling_fallback_is_reproducible_per_seed():
    """Sampling (temperature > 0) draws from the options' seed: the same seed gives the same words
    on a re-run, another seed other samples, and decoding leaves the caller's global torch
    generator where it was."""
    from conftest import JFK

    from audiotools.asr.transcribe import TranscribeOptions, Transcriber
    from audiotools.audio.decode import load_audio

    samples = load_audio(JFK).samples
    options = TranscribeOptions(model="tiny.en", device="cpu", language="en", temperatures=(1.0,), best_of=1)
    transcribers = {seed: Transcriber(options.replace(seed=seed)) for seed in (0, 1000)}
    assert decode_options(transcribers[1000].options).seed == 1000

    def text(seed: int) -> str:
        segments, _, _ = transcribers[seed].transcribe_samples(samples)
        return " ".join(s.text.strip() for s in segments)

    first = text(0)  # the first call loads the model (its construction draws from the generator)
    assert len(first.split()) >= 10
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    assert text(0) == first
    assert torch.equal(torch.rand(1), expected_next)
    assert text(1000) != first


def test_text_token_cap_forces_eot_even_where_the_timestamp_rules_masked_it():
    """The cap filter runs after the timestamp rules: a row over its cap gets EOT as its only choice
    (also where the rules had masked every text token and EOT with it); the other rows keep every logit."""
    from audiotools.asr.decoding import _TextTokenCap

    tok = get_tokenizer(True, language="en", task="transcribe")
    begin = len(tok.sot_sequence)
    text = [100, 200, 300, 400]
    tokens = torch.tensor(
        [
            [*tok.sot_sequence, *text, tok.timestamp_begin + 5],  # 4 text tokens: over a cap of 3
            [*tok.sot_sequence, text[0], *(tok.timestamp_begin + k for k in (0, 3, 9, 9))],  # 1 text token, cap 0
            [*tok.sot_sequence, *text, tok.timestamp_begin + 5],  # 4 text tokens, cap 4: not over
        ]
    )
    logits = torch.randn(3, 51865)
    logits[0, : tok.timestamp_begin] = -np.inf  # what the rules do when the timestamps outweigh the text
    before = logits.clone()
    _TextTokenCap(begin, tok.eot, torch.tensor([3.0, 0.0, 4.0])).apply(logits, tokens)
    for row in (0, 1):
        assert logits[row].argmax() == tok.eot and torch.isfinite(logits[row]).sum() == 1
    assert torch.equal(logits[2], before[2])


def test_decoding_stops_at_the_text_token_cap_and_falls_back(tiny_transcriber, monkeypatch):
    """With each window's seconds, a decoding that passes STOP_FACTOR x the loop bound in text tokens
    is cut there (EOT forced), marked ``stopped``, and counts as failed, so every temperature is
    tried; given its real length, the same window decodes as without the cap."""
    from conftest import JFK

    from audiotools.asr import decoding
    from audiotools.asr.decoding import STOP_FACTOR, decode_windows, loop_limit, text_tokens
    from audiotools.audio.decode import load_audio

    passes = []  # (temperature, windows) of every decoding pass: the real passes, recorded
    real_run = decoding._Task.run

    def recorded(task, mel):
        passes.append((task.options.temperature, mel.shape[0]))
        return real_run(task, mel)

    monkeypatch.setattr(decoding._Task, "run", recorded)

    t = tiny_transcriber
    samples = load_audio(JFK).samples  # 11 s, 22 words
    opts = decode_options(t.options)
    eot = t.tokenizer("en").eot
    with torch.inference_mode():
        features = t._encode([samples, samples[: 16000 * 5]])
        free = decode_windows(t.model, features, ["en"] * 2, opts)
        real = decode_windows(t.model, features, ["en"] * 2, opts, seconds=[11.0, 5.0])
        # told the 11 s window has no audio: a cap of 2 x 10 text tokens, which its 23 exceed
        quick = dataclasses.replace(opts, temperatures=(0.0, 0.5), best_of=2)
        passes.clear()
        short = decode_windows(t.model, features, ["en"] * 2, quick, seconds=[0.0, 5.0])
        short_passes = list(passes)
        short_free = decode_windows(t.model, features[1:], ["en"], quick)
        beam = dataclasses.replace(quick, beam_size=2)  # temperature 0 by beam search: the other decoding loop
        beam_cut = decode_windows(t.model, features[:1], ["en"], beam, seconds=[0.0])[0]
    assert [r.tokens for r in real] == [r.tokens for r in free] and not any(r.stopped for r in real)
    assert text_tokens(free[0].tokens, eot) > STOP_FACTOR * loop_limit(0.0)
    cut = short[0]
    assert cut.stopped and text_tokens(cut.tokens, eot) == int(STOP_FACTOR * loop_limit(0.0)) + 1
    # the cut greedy attempt counted as failed: the window was sampled at 0.5 (the 5 s one was not)
    assert short_passes == [(0.0, 2), (0.5, 1)]
    assert short[1].tokens == short_free[0].tokens and not short[1].stopped
    assert beam_cut.stopped and text_tokens(beam_cut.tokens, eot) == int(STOP_FACTOR * loop_limit(0.0)) + 1
