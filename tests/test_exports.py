"""The subtitle and RTTM writers on text and names that would break their formats."""

from __future__ import annotations

from audiotools.export.writers import rttm_lines, to_rttm, to_srt, to_vtt
from audiotools.transcript import AudioInfo, Segment, Transcript


def _transcript(segments, turns=None):
    info = AudioInfo(path="my call.wav", sha256="", pcm_sha256="", duration=30.0, sample_rate=16000, channels=1)
    t = Transcript(audio=info, model={}, language="en", segments=segments)
    if turns is not None:
        t.extra["diarization"] = {"turns": turns}
    return t


def _cues(vtt: str) -> list[list[str]]:
    """The cue blocks of a WebVTT file after its header and NOTE blocks."""
    blocks = [b.split("\n") for b in vtt.strip().split("\n\n")]
    return [b for b in blocks if "-->" in b[0]]


def test_vtt_escapes_markup_and_srt_keeps_the_arrow_out():
    t = _transcript(
        [
            Segment(id=0, start=0.0, end=1.0, text=" I <3 you, x<y & AT&T", speaker="Anna <A>"),
            Segment(id=1, start=1.0, end=2.0, text=" then -> next --> last\nline"),
        ]
    )
    cues = _cues(to_vtt(t))
    assert cues[0] == ["00:00:00.000 --> 00:00:01.000", "<v Anna &lt;A&gt;>I &lt;3 you, x&lt;y &amp; AT&amp;T"]
    assert cues[1] == ["00:00:01.000 --> 00:00:02.000", "then -&gt; next -&gt; last line"]
    srt = to_srt(t).split("\n")
    assert srt[:4] == ["1", "00:00:00,000 --> 00:00:01,000", "[Anna <A>] I <3 you, x<y & AT&T", ""]
    assert srt[6] == "then -> next -> last line" and srt[5].count("-->") == 1


def test_empty_segments_make_no_cue_and_numbering_stays_whole():
    t = _transcript(
        [
            Segment(id=0, start=0.0, end=1.0, text=" one"),
            Segment(id=1, start=1.0, end=2.0, text="  "),
            Segment(id=2, start=2.0, end=3.0, text=" three"),
        ]
    )
    srt = to_srt(t).split("\n")
    assert [srt[0], srt[2], srt[4], srt[6]] == ["1", "one", "2", "three"]
    assert len(_cues(to_vtt(t))) == 2


def test_rttm_fields_and_no_speaker_claim_without_diarisation():
    # every whitespace run in the file id and the names is one "_": ten fields per line
    lines = rttm_lines("my\u00a0call\tx", [(0.0, 1.5, "Анна Петрова"), (2.0, 2.0, "B")])
    assert lines == ["SPEAKER my_call_x 1 0.000 1.500 <NA> <NA> Анна_Петрова <NA> <NA>"]
    assert all(len(line.split()) == 10 for line in lines)
    # diarisation off: the segments carry no speaker, and the RTTM says nobody spoke rather than SPEAKER_00
    plain = _transcript([Segment(id=0, start=0.0, end=1.0, text=" hello")])
    assert to_rttm(plain).strip() == ""
    turns = [{"start": 0.0, "end": 1.0, "speaker": "SPEAKER_00"}, {"start": 0.5, "end": 2.0, "speaker": "SPEAKER_01"}]
    diarised = _transcript([Segment(id=0, start=0.0, end=2.0, text=" hello", speaker="SPEAKER_00")], turns)
    assert [line.split()[7] for line in to_rttm(diarised).split("\n") if line] == ["SPEAKER_00", "SPEAKER_01"]
