"""Words and segments to speakers (audiotools.diarize.speaker_turns): the sweep against a brute-force
reference, segment splitting, the speaker summary. Pure Python, no audio, fast."""

from __future__ import annotations

import random
import time

import pytest

from audiotools.diarize.speaker_turns import (
    apply_turns,
    assign_intervals,
    normalize_turns,
    speaker_summary,
    split_segment,
)
from audiotools.transcript import AudioInfo, Segment, Transcript, Word


def brute_force(intervals, turns):
    """O(n x m) reference: most overlap per speaker (merged turns), else the nearest turn."""
    turns = normalize_turns(turns)
    out = []
    for s, e in intervals:
        s, e = min(s, e), max(s, e)
        best, best_ov = None, 0.0
        for ts, te, spk in turns:
            ov = min(e, te) - max(s, ts)
            if ov > best_ov or (ov == best_ov and ov > 0 and best is not None and spk < best):
                best, best_ov = spk, ov
        if best is None and turns:
            if s == e:
                inside = [spk for ts, te, spk in turns if ts <= s <= te]
                if inside:
                    out.append(inside[0])
                    continue
            dist = [(max(0.0, ts - e, s - te), ts, spk) for ts, te, spk in turns]
            best = min(dist)[2]
        out.append(best)
    return out


def random_case(rng: random.Random, n_words: int, n_turns: int, n_speakers: int, duration: float):
    turns = []
    for _ in range(n_turns):
        s = rng.uniform(0, duration)
        turns.append((s, s + rng.uniform(0.05, 8.0), f"SPEAKER_{rng.randrange(n_speakers):02d}"))
    words = []
    for _ in range(n_words):
        s = rng.uniform(-2, duration + 2)
        words.append((s, s + rng.uniform(0.0, 0.9)))
    return words, turns


@pytest.mark.parametrize("seed", range(12))
def test_sweep_matches_brute_force(seed):
    rng = random.Random(seed)
    words, turns = random_case(
        rng,
        n_words=rng.randrange(1, 400),
        n_turns=rng.randrange(1, 60),
        n_speakers=rng.randrange(1, 6),
        duration=rng.uniform(5, 120),
    )
    assert assign_intervals(words, turns) == brute_force(words, turns)


def test_sparse_turns_use_nearest_speaker():
    turns = [(10.0, 12.0, "A"), (20.0, 21.0, "B")]
    words = [(0.0, 0.5), (12.5, 13.0), (18.0, 18.5), (30.0, 31.0), (11.0, 11.2), (15.8, 16.0)]
    assert assign_intervals(words, turns) == ["A", "A", "B", "B", "A", "A"]
    assert assign_intervals(words, turns) == brute_force(words, turns)


def test_no_turns_leaves_none():
    assert assign_intervals([(0.0, 1.0)], []) == [None]
    assert assign_intervals([], [(0.0, 1.0, "A")]) == []


def test_large_input_is_not_quadratic():
    rng = random.Random(7)
    n = 200_000
    words, t = [], 0.0
    for _ in range(n):
        words.append((t, t + 0.3))
        t += rng.uniform(0.25, 0.5)
    turns, t = [], 0.0
    while t < words[-1][1]:
        d = rng.uniform(0.5, 6.0)
        turns.append((t, t + d, f"S{rng.randrange(8)}"))
        t += d + rng.uniform(0.0, 0.5)
    t0 = time.perf_counter()
    out = assign_intervals(words, turns)
    took = time.perf_counter() - t0
    assert len(out) == n and None not in out
    assert took < 10.0, f"{took:.1f} s for {n} words x {len(turns)} turns"
    sample = rng.sample(range(n), 300)
    ref = brute_force([words[i] for i in sample], turns)
    assert [out[i] for i in sample] == ref


def _word(text, s, e, spk=None):
    return Word(word=text, start=s, end=e, probability=0.9, speaker=spk)


def _transcript(segments):
    info = AudioInfo(path="x.wav", sha256="", pcm_sha256="", duration=30.0, sample_rate=16000, channels=1)
    return Transcript(audio=info, model={}, language="en", segments=segments)


def test_split_segment_on_word_boundaries():
    seg = Segment(
        id=3,
        start=0.9,
        end=4.2,
        text=" Hello there. Hi!",
        avg_logprob=-0.2,
        words=[_word(" Hello", 1.0, 1.4, "A"), _word(" there.", 1.5, 2.0, "A"), _word(" Hi!", 3.0, 4.0, "B")],
    )
    pieces = split_segment(seg)
    assert [p.text for p in pieces] == [" Hello there.", " Hi!"]
    assert [p.speaker for p in pieces] == ["A", "B"]
    assert pieces[0].start == 0.9 and pieces[0].end == 2.0
    assert pieces[1].start == 3.0 and pieces[1].end == 4.2
    assert all(p.avg_logprob == -0.2 for p in pieces)


def test_apply_turns_splits_renumbers_and_summarises():
    segs = [
        Segment(
            id=0,
            start=0.0,
            end=4.0,
            text=" one two three four",
            words=[
                _word(" one", 0.1, 0.5),
                _word(" two", 0.6, 1.0),
                _word(" three", 2.1, 2.6),
                _word(" four", 2.7, 3.5),
            ],
        ),
        Segment(id=1, start=5.0, end=6.0, text=" five", words=[_word(" five", 5.1, 5.8)]),
        Segment(id=2, start=7.0, end=9.0, text=" (no words)", words=[]),
    ]
    t = _transcript(segs)
    turns = [(0.0, 2.0, "SPEAKER_00"), (2.0, 6.5, "SPEAKER_01"), (6.9, 9.5, "SPEAKER_00")]
    apply_turns(t, turns)
    assert [s.id for s in t.segments] == [0, 1, 2, 3]
    assert [s.speaker for s in t.segments] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_01", "SPEAKER_00"]
    assert [s.text for s in t.segments[:2]] == [" one two", " three four"]
    assert all(w.speaker == s.speaker for s in t.segments for w in s.words)
    assert t.speakers == {
        "SPEAKER_00": {"duration": 4.6, "segments": 2},
        "SPEAKER_01": {"duration": 4.5, "segments": 2},
    }
    d = t.to_dict()
    assert d["segments"][0]["speaker"] == "SPEAKER_00"
    assert d["segments"][1]["words"][0]["speaker"] == "SPEAKER_01"


def test_speaker_summary_counts_first_appearance_order():
    segs = [Segment(id=0, start=0, end=1, text="a", speaker="B"), Segment(id=1, start=1, end=2, text="b", speaker="A")]
    summary = speaker_summary([(5.0, 6.0, "A"), (0.0, 1.0, "B"), (1.0, 1.5, "B")], segs)
    assert list(summary) == ["B", "A"]
    assert summary["B"] == {"duration": 1.5, "segments": 1}


def test_a_piece_of_zero_length_words_takes_the_pause_before_it():
    """Whisper's alignment sometimes gives a word no duration; alone between two other speakers'
    words it would be a segment (and a subtitle cue) of no length that no player shows."""
    seg = Segment(
        id=0,
        start=0.0,
        end=2.5,
        text=" yes the no",
        words=[_word(" yes", 0.0, 1.0, "A"), _word(" the", 1.5, 1.5, "B"), _word(" no", 1.5, 2.5, "A")],
    )
    pieces = split_segment(seg)
    assert [(p.text, p.speaker, p.start, p.end) for p in pieces] == [
        (" yes", "A", 0.0, 1.0),
        (" the", "B", 1.0, 1.5),
        (" no", "A", 1.5, 2.5),
    ]
    # no pause before it: the one after
    seg.words = [_word(" yes", 0.0, 1.5, "A"), _word(" the", 1.5, 1.5, "B"), _word(" no", 1.8, 2.5, "A")]
    assert [(p.start, p.end) for p in split_segment(seg)] == [(0.0, 1.5), (1.5, 1.8), (1.8, 2.5)]
