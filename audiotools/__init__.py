"""audiotools: transcripts people can trust. Who spoke, when, what they said, and proof it belongs to the audio."""

__version__ = "0.1.0"

from .errors import AudiotoolsError, InputError  # noqa: E402
from .transcript import Segment, Transcript, Word  # noqa: E402


def transcribe(path, **options) -> Transcript:
    """Transcribe one file; see :func:`audiotools.transcriber.transcribe_file` for the options."""
    from .transcriber import transcribe_file
    return transcribe_file(path, **options)


__all__ = ["__version__", "transcribe", "Transcript", "Segment", "Word", "AudiotoolsError", "InputError"]
