"""The obscene vocabulary of Russian, Ukrainian and Belarusian as a small word grammar.

A word is obscene when, after :func:`~.normalize.slavic_canonical`, it is the *whole* of

    [outer prefix] [prefix] [compound stem] ROOT CONTINUATION

where ROOT is one of a handful of obscene roots (the х-у-й, п-и-з-д, е-б/ё-б/ї-б/йо-б,
б-л-я-д, м-у-д, с-у-к, п-и-д-о-р families and a few more), the prefixes are real verbal
prefixes of the three languages (за-, по-, вы-/ви-, от-/ад-/від-, на-, у-, раз-/роз-,
до-/да-, с-/з-, при-/пры-, про-/пра-, пере-/пера-, недо-, о-/а-, об-/аб-, под-/пад-/під- ...),
and CONTINUATION is what may follow that root (suffixes and endings). Because a root only
counts at the start of the word or right after a prefix, ordinary words that merely
*contain* the letters stay untouched: "страхуй" (стра- is no prefix), "сухую", "скрипка",
"оскорблять", "корабля", "ребята", "хлеб", "вебинар" (в- before a vowel root needs ъ).

Per-language parts (the prefix spellings, the Ukrainian ї/йо and Belarusian я root vowels)
are listed separately below, but the three languages share one grammar: recordings from
Belarus and Ukraine mix the languages freely (trasianka, surzhyk).
"""

from __future__ import annotations

import re

# ---------------------------------------------------------------- prefixes (canonical spelling)
# canonical: ё/є->е, і->и, ў->в, apostrophe->ъ (see normalize.slavic_canonical)
PREFIXES_VOWEL = {
    "ru": ["вы", "за", "на", "по", "у", "до", "про", "пере", "при", "о", "недо", "ни", "не", "пре"],
    "uk": ["ви", "за", "на", "по", "у", "до", "про", "пере", "при", "о", "недо", "ни", "не"],
    "be": ["вы", "за", "на", "па", "у", "да", "пра", "пера", "пры", "а", "неда", "ни", "не"],
}
PREFIXES_CONSONANT = {
    "ru": ["от", "под", "над", "раз", "рас", "из", "ис", "вз", "вс", "в", "с", "об", "без", "бес"],
    "uk": ["вид", "пид", "над", "роз", "рос", "из", "вз", "в", "з", "с", "об", "без"],
    "be": ["ад", "пад", "над", "раз", "рас", "из", "ис", "уз", "з", "с", "аб", "без"],
}
# An outer prefix may stand before another one: "по-на-", "ни-", "недо-раз-".
PREFIXES_OUTER = [
    "ни",
    "не",
    "недо",
    "неда",
    "по",
    "па",
    "на",
    "за",
    "до",
    "да",
    "под",
    "пад",
    "пид",
    "от",
    "ад",
    "вид",
    "вы",
    "ви",
    "раз",
    "рас",
    "роз",
    "пере",
    "при",
    "из",
]  # (not с-/у-: "с-у-хую" must stay сухую)
# First halves of compounds: долбоёб, довбойоб, мудоёб, мозгоёб; any stem + linking -о-
# before the е-б root (злоебучий, uk зрадойоб), see GENERIC_COMPOUND.
COMPOUND_STEMS = ["долбо", "довбо", "далба", "мудо", "мозго", "тупо", "пидоро", "хуе", "хуй"]
GENERIC_COMPOUND = r"[а-яи]{2,}о"

# ---------------------------------------------------------------- roots
# Roots that begin with a consonant: any prefix attaches directly (от-хуярить, с-пиздить).
# Each maps to the regex of what may follow the root letters.
_ANY = r"\w*"
PIDOR_CONT = (
    r"(?:|а|ы|и|у|е|ом|ов|ив|ав|иськ\w*|ам|ами|ах|ас\w*|аст\w*|ск\w*|ств\w*|юг\w*|ил\w*|ок|очек|"
    r"ня|ни|нут\w*|ну\w*|ятин\w*|юк\w*)"
)
ROOTS_CONSONANT = {
    # хуй, хуя, хуёвый, хуесос, хуйня, хуярить, хуило; uk хуї/хуєвий; be хуі/хуёвы.
    # After ху- only й/е/я/ю/и/ї: хулиган, худой, хутор, хуже, хурма, Хуан stay clean.
    "ху": r"(?:[йеяюиї]\w*)",
    # пизда, пиздец, пиздёж, спизженный (д/ж alternation), пездюк; be піздзец (дз->д).
    "п[ие]з": r"(?:[дж]\w*)",
    # блядь, блядство, выблядок; bare бля / блять / be бляць only without a prefix (below).
    "бляд": _ANY,
    # мудак, мудила, мудозвон, мудохаться, мудачьё, муде; not мудрый (р is not listed).
    "муд": r"(?:ак|ач|ац|ил|озвон|ох|оеб|оёб|ищ|е|ей|ям|ями|ях|ень|ня)\w*",
}
# Roots without prefixes (a prefix would make ordinary words: с-ука? no; but "курва" etc.)
ROOTS_BARE = {
    # манда, мандавошка; not мандарин, мандат, мандраж, команда, Аманда (so no prefixes).
    "манд": r"(?:а|ы|е|у|ой|ою|ам|ами|ах|[ао]вош\w*|ищ\w*)",
    # залупа, залупаться.
    "залуп": _ANY,
    # сука, суки, суке, сукой, uk суко, be сукай, сукин сын; not сукно, суккулент, сукня,
    # сукупність, сукровица, сук (a branch).
    "сук": r"(?:а|и|е|у|ой|ою|ам|ами|ах|о|ай|ав|ин\w*|ища?|ищи|ищ[еу]|ищем|иськ\w*)",
    # сучка, сучара, сучонок, сучий, сучье; not сучок/сучки (knots), сучить (to twist).
    "суч": r"(?:илищ\w*|ар\w*|онок\w*|онк\w*|ат\w*|ь\w*|ий|ка|ке|ку|кой|кою|кам|ками|ках|ен\w*|еныш\w*|ечк\w*)",
    # пидор, пидорас, пидарас, пидрила; uk підор; be підар; not підозра, спидометр.
    # Endings are listed: uk під- is a prefix (підрозділ, підряд, підарендувати, підорати).
    "пид": r"(?:[оа]р" + PIDOR_CONT + r"|рил\w*|рас\w*|ерас\w*|ераст\w*)",
    "пед": r"(?:ерас\w*|ераст\w*|рил\w*)",
    # курва (uk, be, also ru); not курватура, курвиметр.
    "курв": r"(?:а|ы|и|е|у|ой|ою|ам|ами|ах|о|ав|ов|ин\w*|ищ\w*|иськ\w*|ий|ья|ье|ьи|ен\w*|ятник\w*|яц\w*|ятск\w*|ск\w*)",
    # бля, блять, blядь handled above; bare interjection forms.
    "бля": r"(?:ть?|)",
    # хули (= what the fuck), хуле; not хулиган, хулить.
    "хул": r"(?:и|е)",
}
# The е-б root begins with a vowel: consonant-final prefixes need the hard sign (въебать,
# съебаться, отъебись, подъёбка, uk від'їбись/з'їбатися, be раз'ебаць/ад'ябацца).
# Root spellings: ru е/ё, uk ї/йо/е, be е/ё/я/ї.
EB_ROOTS = {"ru": ["е"], "uk": ["ї", "йо", "е"], "be": ["е", "ї", "йо"]}
# What may follow the б of the е-б root.
# (Foreign names stay clean: Еберт, Еберхард, Ебнер.)
EB_CONT = (
    r"(?:а\w*|у\w*|е(?:[тшмн]\w*)?|л\w*|н(?:у\w*|е[тшм]\w*|и\w*)|ы\w*|в\w*|"
    r"и(?:сь|ся|те|тесь|ть|ться|тся|т|шь|в|л\w*|щ\w*|н\w*|к\w*|ст\w*|ськ\w*)?|к\w*|ош\w*|щ\w*|ств\w*|ь|)"
)
# ... and with a prefix also the о- forms: выебон, уебок, поебота.
EB_CONT_PREFIXED = r"(?:" + EB_CONT + r"|о[кнтш]\w*)"
# Belarusian яканне: ябаць, ябаны, ад'ябацца -- only -а- forms (яблык, ябеда stay clean).
YAB = r"яб(?:а[цтнлшд]\w*)"


def _alt(items) -> str:
    items = sorted(set(items), key=len, reverse=True)
    return "(?:" + "|".join(re.escape(i) for i in items) + ")"


def build_patterns(languages) -> list[re.Pattern]:
    vow = [p for lang in languages for p in PREFIXES_VOWEL.get(lang, [])]
    con = [p for lang in languages for p in PREFIXES_CONSONANT.get(lang, [])]
    eb_roots = [r for lang in languages for r in EB_ROOTS.get(lang, [])]
    outer = _alt(PREFIXES_OUTER)
    pfx_any = _alt(vow + con)
    pfx_eb = "(?:" + _alt(vow) + "|" + _alt(con) + "[ъь]" + ")"
    comp = _alt(COMPOUND_STEMS)

    pats = []
    cons_roots = "|".join(f"{root}{cont}" for root, cont in ROOTS_CONSONANT.items())
    # prefixed or compound forms of consonant roots
    pats.append(rf"(?:{outer}?{pfx_any})?(?:{comp})?(?:{cons_roots})")
    bare = "|".join(f"{root}{cont}" for root, cont in ROOTS_BARE.items())
    pats.append(rf"(?:{bare})")
    if eb_roots:
        eb = _alt(eb_roots) + "б"
        # no prefix: ебать, ёбаный, їбати, йобаний (not ебонит: о-forms need a prefix)
        pats.append(rf"{eb}{EB_CONT}")
        # prefixed: заебать, въебать, від'їбись, долбоёб, довбойоб
        pats.append(rf"(?:{outer}?{pfx_eb}|(?:{outer}?{pfx_any})?{comp}|{outer}?{pfx_any}(?=й)){eb}{EB_CONT_PREFIXED}")
        pats.append(rf"{GENERIC_COMPOUND}{eb}{EB_CONT}")
    if "be" in languages:
        pats.append(rf"(?:{outer}?{pfx_eb})?{YAB}")
    return [re.compile(p) for p in pats]


class SlavicGrammar:
    def __init__(self, languages=("ru", "uk", "be")):
        self.languages = tuple(languages)
        self.patterns = build_patterns(self.languages)

    def match(self, canonical: str) -> bool:
        return any(p.fullmatch(canonical) for p in self.patterns)
