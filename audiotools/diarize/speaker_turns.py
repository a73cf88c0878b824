"""Speakers for words and segments: turns -> word speakers -> segments split at speaker changes.

* Each word gets the speaker whose turns overlap it most; a word that overlaps no turn gets the
  speaker of the nearest turn. One sweep over words and turns sorted by start time, with a heap of
  the turns still open (at most one per speaker once a speaker's own turns are merged):
  O((n + m) log m) for n words and m turns, never n x m.
* A segment whose words change speaker is split on word boundaries; a piece's text is the
  concatenation of its words, its times run from its first to its last word (the outer pieces keep
  the segment's own start/end); ids are renumbered. A segment without words takes the speaker that
  overlaps it most.
* ``speaker_summary``: per speaker, the diarised speech duration and the number of segments.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Sequence

from audiotools.transcript import Segment, Transcript, Word

Turn = tuple[float, float, str]


def normalize_turns(turns: Iterable[Sequence]) -> list[Turn]:
    """Sorted turns with each speaker's own overlapping/touching turns merged."""
    by_speaker: dict[str, list[list[float]]] = {}
    for t in turns:
        s, e, spk = float(t[0]), float(t[1]), str(t[2])
        if e > s:
            by_speaker.setdefault(spk, []).append([s, e])
    out: list[Turn] = []
    for spk, items in by_speaker.items():
        items.sort()
        merged: list[list[float]] = []
        for s, e in items:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        out.extend((s, e, spk) for s, e in merged)
    out.sort(key=lambda t: (t[0], t[1], t[2]))
    return out


class _Nearest:
    """Nearest turn to an interval that overlaps none (O(log m) per query)."""

    def __init__(self, turns: list[Turn]):
        self.turns = turns
        self.starts = [t[0] for t in turns]
        # index of the turn with the latest end among turns[:i+1]
        self.best_end: list[int] = []
        best = -1
        for i, t in enumerate(turns):
            if best < 0 or t[1] > turns[best][1]:
                best = i
            self.best_end.append(best)

    def __call__(self, start: float, end: float) -> str | None:
        if not self.turns:
            return None
        i = bisect.bisect_right(self.starts, start) - 1
        cands = []
        if i >= 0:
            b = self.turns[self.best_end[i]]
            cands.append((max(0.0, start - b[1]), b[0], b[2]))
        j = bisect.bisect_left(self.starts, end)
        if j < len(self.turns):
            t = self.turns[j]
            cands.append((max(0.0, t[0] - end), t[0], t[2]))
        if not cands:
            return self.turns[0][2]
        return min(cands)[2]


def assign_intervals(intervals: Sequence[tuple[float, float]], turns: Iterable[Sequence]) -> list[str | None]:
    """The speaker for each (start, end) interval: most overlap, else the nearest turn; None when
    there are no turns at all."""
    turns = normalize_turns(turns)
    n = len(intervals)
    result: list[str | None] = [None] * n
    if not turns or n == 0:
        return result
    nearest = _Nearest(turns)
    order = sorted(range(n), key=lambda i: (intervals[i][0], intervals[i][1]))
    heap: list[tuple[float, int]] = []  # (end, turn index) of turns that may still overlap
    j = 0
    for i in order:
        ws, we = float(intervals[i][0]), float(intervals[i][1])
        if we < ws:
            ws, we = we, ws
        while j < len(turns) and turns[j][0] < we:
            heapq.heappush(heap, (turns[j][1], j))
            j += 1
        while heap and heap[0][0] <= ws:  # ended before this (and every later) interval starts
            heapq.heappop(heap)
        best, best_ov = None, 0.0
        for _, k in heap:
            s, e, spk = turns[k]
            ov = min(we, e) - max(ws, s)
            if ov > best_ov or (ov == best_ov and ov > 0 and best is not None and spk < best):
                best, best_ov = spk, ov
        if best is None and we == ws:  # zero-length word inside a turn
            for _, k in heap:
                s, e, spk = turns[k]
                if s <= ws <= e:
                    best = spk
                    break
        result[i] = best if best is not None else nearest(ws, we)
    return result


def assign_words(words: Sequence[Word], turns: Iterable[Sequence]) -> None:
    """Set ``word.speaker`` on every word (in place)."""
    speakers = assign_intervals([(w.start, w.end) for w in words], turns)
    for w, spk in zip(words, speakers):
        w.speaker = spk


def _majority(words: Sequence[Word]) -> str | None:
    score: dict[str, float] = {}
    for w in words:
        if w.speaker is not None:
            score[w.speaker] = score.get(w.speaker, 0.0) + max(w.end - w.start, 1e-3)
    return sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] if score else None


def split_segment(seg: Segment) -> list[Segment]:
    """Pieces of ``seg`` at the speaker changes of its words (words must carry speakers)."""
    if not seg.words:
        return [seg]
    groups: list[list[Word]] = [[seg.words[0]]]
    for w in seg.words[1:]:
        if w.speaker != groups[-1][-1].speaker:
            groups.append([w])
        else:
            groups[-1].append(w)
    if len(groups) == 1:
        seg.speaker = groups[0][0].speaker
        return [seg]
    out = []
    for gi, ws in enumerate(groups):
        start = min(seg.start if gi == 0 else ws[0].start, ws[0].start)
        end = max(seg.end if gi == len(groups) - 1 else ws[-1].end, ws[-1].end)
        if end <= start:  # a piece of zero-length words (an alignment artefact): the pause before it,
            start = min(start, groups[gi - 1][-1].end if gi else seg.start)  # else the one after,
            end = max(end, groups[gi + 1][0].start if gi + 1 < len(groups) else seg.end)  # so it shows
        out.append(
            Segment(
                id=seg.id,
                start=start,
                end=end,
                text="".join(w.word for w in ws),
                words=ws,
                speaker=ws[0].speaker,
                avg_logprob=seg.avg_logprob,
                no_speech_prob=seg.no_speech_prob,
                compression_ratio=seg.compression_ratio,
                temperature=seg.temperature,
                channel=seg.channel,
            )
        )
    return out


def overlap_regions(turns: Iterable[Sequence]) -> list[tuple[float, float]]:
    """Stretches where two or more speakers' turns overlap, sorted and merged."""
    merged = normalize_turns(turns)
    events = sorted([(s, 1) for s, _, _ in merged] + [(e, -1) for _, e, _ in merged], key=lambda ev: (ev[0], ev[1]))
    out: list[tuple[float, float]] = []
    active, start = 0, 0.0
    for t, delta in events:
        if active < 2 <= active + delta:
            start = t
        elif active >= 2 > active + delta and t > start:
            if out and start <= out[-1][1]:
                out[-1] = (out[-1][0], t)
            else:
                out.append((start, t))
        active += delta
    return out


def mark_overlap(words: Sequence[Word], regions: Sequence[tuple[float, float]]) -> None:
    """``word.overlap = True`` for words whose middle lies in an overlap region."""
    starts = [a for a, _ in regions]
    for w in words:
        mid = (w.start + w.end) / 2
        i = bisect.bisect_right(starts, mid) - 1
        w.overlap = i >= 0 and regions[i][0] <= mid < regions[i][1]


def apply_turns(
    transcript: Transcript,
    turns: Iterable[Sequence],
    channel_of: dict[str, int] | None = None,
    overlap: Sequence[tuple[float, float]] = (),
) -> None:
    """Give every word and segment of ``transcript`` a speaker from ``turns`` (start, end, label: the
    one-speaker-at-a-time track), split segments at speaker changes, renumber them and fill
    ``transcript.speakers``. Words inside ``overlap`` regions are marked ``overlap``."""
    turns = normalize_turns(turns)
    all_words = [w for s in transcript.segments for w in s.words]
    assign_words(all_words, turns)
    mark_overlap(all_words, overlap)
    wordless = [s for s in transcript.segments if not s.words]
    for seg, spk in zip(wordless, assign_intervals([(s.start, s.end) for s in wordless], turns)):
        seg.speaker = spk
    new: list[Segment] = []
    for seg in transcript.segments:
        pieces = split_segment(seg) if seg.words else [seg]
        new.extend(pieces)
    for i, seg in enumerate(new):
        seg.id = i
        if seg.words and seg.speaker is None:
            seg.speaker = _majority(seg.words)
        if channel_of and seg.speaker in channel_of:
            seg.channel = channel_of[seg.speaker]
    transcript.segments = new
    transcript.speakers = speaker_summary(turns, new)


def speaker_summary(turns: Iterable[Sequence], segments: Sequence[Segment]) -> dict[str, dict]:
    """{"SPEAKER_00": {"duration": seconds of speech, "segments": n}} in order of first appearance."""
    turns = normalize_turns(turns)
    out: dict[str, dict] = {}
    for s, e, spk in turns:
        d = out.setdefault(spk, {"duration": 0.0, "segments": 0})
        d["duration"] += e - s
    for seg in segments:
        if seg.speaker is not None:
            out.setdefault(seg.speaker, {"duration": 0.0, "segments": 0})["segments"] += 1
    for d in out.values():
        d["duration"] = round(d["duration"], 3)
    return out
