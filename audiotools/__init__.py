"""audiotools: transcripts people can trust. Who spoke, when, what they said, and proof it belongs to the audio."""

from audiotools.version import __version__

from audiotools.errors import AudiotoolsError, InputError  # noqa: E402
from audiotools.transcript import Segment, Transcript, Word  # noqa: E402


def transcribe(path, **options) -> Transcript:
    """Transcribe one file; see :func:`audiotools.asr.transcribe.transcribe_file` for the options."""
    from audiotools.asr.transcribe import transcribe_file
    return transcribe_file(path, **options)


__all__ = ["__version__", "transcribe", "Transcript", "Segment", "Word", "AudiotoolsError", "InputError"]
