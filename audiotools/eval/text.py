"""Text normalisation for scoring transcripts (WER, CER) in Russian, Ukrainian and Belarusian.

Whisper writes "60 000 рублей.", "Ёлка," and "кто-то"; references are often written "шестьдесят
тысяч рублей", "елка" and "кто то". Before counting errors both sides are put in one form:

* lowercase; ``ё`` -> ``е`` (Russian texts drop the dots more often than not);
* numerals spelled out with ``num2words`` in the language's nominative cardinal form: digit groups
  separated by a space, a no-break or thin space ("60 000", "1 200 000") are one number, "1,5" and
  "1.5" are decimals ("одна целая пять десятых"), "5%" gets "процентов"/"відсотків"/"працэнтаў";
* every other character that is not a letter or a digit (punctuation, hyphens, quotes, dashes)
  becomes a space, and runs of spaces become one.

Known limits: a numeral that the speaker inflected ("в 1941 году" said as "в тысяча девятьсот сорок
первом году") is spelled out in the nominative cardinal only, so it still counts as errors; ordinals
("2-й") and Roman numerals are not spelled out. English text should use openai-whisper's
``EnglishTextNormalizer`` (the benchmarks do).
"""

from __future__ import annotations

import re
import unicodedata

# thousands separators Whisper and references use between digit groups
_GROUP_SEP = "[ \u00a0\u202f\u2009]"
_NUMBER = re.compile(rf"(?<![\w.,])(\d{{1,3}}(?:{_GROUP_SEP}\d{{3}})+|\d+)(?:[.,](\d+))?(?![\w])(\s*%)?")
_PERCENT = {"ru": "процентов", "uk": "відсотків", "be": "працэнтаў", "en": "percent"}
_NUM2WORDS_LANG = {"ru": "ru", "uk": "uk", "be": "be", "en": "en"}


def spell_numbers(text: str, language: str = "ru") -> str:
    """Digits in ``text`` spelled out in ``language`` (ru, uk, be, en): "60 000" -> "шестьдесят тысяч"."""
    from num2words import num2words

    lang = _NUM2WORDS_LANG.get(language, "ru")

    def repl(m: re.Match) -> str:
        whole = re.sub(_GROUP_SEP, "", m.group(1))
        value: int | float = int(whole)
        if m.group(2):
            value = float(f"{whole}.{m.group(2)}")
        words = num2words(value, lang=lang)
        if m.group(3):
            words += " " + _PERCENT.get(language, _PERCENT["ru"])
        return f" {words} "

    return _NUMBER.sub(repl, text)


def normalize_text(text: str, language: str = "ru") -> str:
    """``text`` in the form compared by WER/CER: lowercase, ё -> е, numerals spelled out, no punctuation."""
    text = unicodedata.normalize("NFC", text).lower()
    text = spell_numbers(text, language)
    text = text.replace("ё", "е")
    # letters (with their combining marks) and digits stay; everything else separates words
    text = "".join(ch if ch.isalnum() or unicodedata.category(ch) == "Mn" else " " for ch in text)
    return " ".join(text.split())


def word_error_rate(references: list[str], hypotheses: list[str], language: str = "ru") -> float:
    """Corpus WER (errors over all reference words) after :func:`normalize_text`."""
    import jiwer

    refs = [normalize_text(r, language) for r in references]
    hyps = [normalize_text(h, language) for h in hypotheses]
    return float(jiwer.wer(refs, hyps))


def char_error_rate(references: list[str], hypotheses: list[str], language: str = "ru") -> float:
    """Corpus CER after :func:`normalize_text` (spaces count as characters, as in jiwer)."""
    import jiwer

    refs = [normalize_text(r, language) for r in references]
    hyps = [normalize_text(h, language) for h in hypotheses]
    return float(jiwer.cer(refs, hyps))
