"""Rule-based profanity detection for transcripts (English, Russian, Ukrainian, Belarusian).

The public face is :mod:`audiotools.mask.masking`; this package holds the machinery:

* :mod:`.normalize` -- look-alike letters, leetspeak, repeated letters, Slavic orthography;
* :mod:`.english`   -- English roots, compounds and inflections;
* :mod:`.slavic`    -- the prefix + root + suffix grammar shared by Russian, Ukrainian, Belarusian;
* :mod:`.wordlists` -- word files (built-in exceptions/extras and the user's own);
* :mod:`.engine`    -- tokenisation and the detector that combines the above.
"""

from audiotools.mask.profanity.engine import LANGUAGES, Detector

__all__ = ["Detector", "LANGUAGES"]
