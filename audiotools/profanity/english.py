"""English obscene vocabulary as roots with the compounds and endings each one takes.

Each rule is a regular expression that must match the *whole* normalised word (lower case,
look-alikes and leetspeak resolved, stretched letters collapsed -- see :mod:`.normalize`).
Roots that never occur inside ordinary English words (fuck, bitch, bastard) may sit anywhere
in a word; the others only with the compound parts and endings listed, which is what keeps
"Scunthorpe", "assassin", "class", "Matsushita", "Shiite", "Pissarro", "swank", "Dickens",
"cocktail", "arsenal" and "snigger" clean.
"""

from __future__ import annotations

import re

# Words that go in front of the ass/arse/shit/cunt roots to form compounds.
ASS_PREFIXES = ["dumb", "jack", "smart", "fat", "bad", "kick", "lard", "hard", "wise", "half", "candy",
                "kiss", "lazy", "big", "sweet", "tight", "cheap", "dip", "stupid", "wiseass", "sorry",
                "broke", "dumbass", "punk", "tough", "crazy", "sissy", "silly", "lame", "pompous",
                "mega", "bad", "grab", "bare", "pain", "hairy", "horse", "rat", "weak", "puss"]
ASS_SUFFIXES = ["hole", "holes", "holed", "holery", "hat", "hats", "wipe", "wipes", "face", "faces",
                "clown", "clowns", "kisser", "kissers", "kissing", "licker", "lickers", "licking",
                "munch", "munchers", "bag", "bags", "wad", "wads", "head", "heads", "es", "ed", "hattery",
                "crack", "cracks", "load", "loads", "fuck", "shit", "bandit", "hat", "jacker", "monkey",
                "nugget", "wagon"]
SHIT_PREFIXES = ["bull", "horse", "dip", "bat", "chicken", "ape", "dog", "cow", "holy", "jack", "pig",
                 "bird", "dumb", "ass", "hot", "lil", "little", "no", "god", "deep", "hard", "tough",
                 "big", "cat", "rat", "bear", "chicken", "dip", "dick", "pile", "pieceof", "crock",
                 "crockof", "eat", "sheep", "goat", "horse", "ox", "elephant", "bullshit", "holyshit",
                 "mouse", "pot", "tosh", "un", "super", "mega", "apes"]
SHIT_SUFFIXES = ["s", "ty", "tier", "tiest", "tiness", "ting", "tings", "ted", "ter", "ters", "e", "es",
                 "head", "heads", "hole", "holes", "show", "shows", "load", "loads", "face", "faced",
                 "faces", "storm", "storms", "bag", "bags", "stain", "stains", "list", "lists", "post",
                 "posts", "posting", "talk", "talker", "talking", "box", "fit", "fits", "kicker", "kickers",
                 "house", "hot", "less", "tastic", "pile", "piles", "stick", "sticks", "y", "ey",
                 "ass", "bird", "brain", "brained", "canned", "can", "cunt", "fuck", "heel", "hook",
                 "heap", "heel", "lord", "people", "ters", "work", "hammered", "hawk", "ful", "loaded"]
CUNT_PREFIXES = ["dumb", "stupid", "thick", "silly", "fat", "sick", "lazy", "mega", "super", "daft",
                 "smart", "shit", "ugly"]
CUNT_SUFFIXES = ["s", "ing", "ish", "y", "ier", "ed", "er", "ers", "face", "faces", "flap", "flaps",
                 "rag", "rags", "hole", "holes", "bag", "bags", "head", "heads", "ishness", "muscle",
                 "lick", "licker", "lickers", "wit", "wits", "y"]
DICK_SUFFIXES = ["head", "heads", "wad", "wads", "face", "faces", "ish", "hole", "holes", "weed", "weeds",
                 "bag", "bags", "less", "smack", "wit", "wits", "nose", "shit", "sucker", "suckers",
                 "sucking", "ed", "ing", "ery", "wod", "brain", "brains", "cheese", "lick", "licker",
                 "ridden", "swinging", "tater", "wipe"]
PISS_SUFFIXES = ["ed", "es", "ing", "er", "ers", "y", "head", "heads", "pot", "pots", "take", "taking",
                 "takes", "off", "flaps", "poor", "hole", "holes", "artist", "artists", "ant", "ants",
                 "ups", "up", "weak", "ant"]


def _alt(items) -> str:
    items = sorted(set(items), key=len, reverse=True)
    return "(?:" + "|".join(re.escape(i) for i in items) + ")"


RULES: dict[str, str] = {
    # fuck anywhere (no ordinary English word contains it): motherfucker, clusterfuck, fuckwit ...
    "fuck": r"\w*fuck\w*",
    # fuk/fck spellings only as whole words with endings: not Fukuoka, Fukushima.
    "fuk": r"(?:mother|motha|mutha|mofo)?(?:fuk|fck|fcuk|fuc|phuk|fuq)(?:s|ed|d|er|ers|in|ing|ings|a|ah|as|ery|wit|head|face|off|up|tard|boy|all)?",
    "shit": rf"{_alt(SHIT_PREFIXES)}?shit{_alt(SHIT_SUFFIXES)}?",
    "shite": r"shite(?:s|y)?",
    "cunt": rf"{_alt(CUNT_PREFIXES)}?cunt{_alt(CUNT_SUFFIXES)}?",
    # cock only in compounds: not cocktail, cockpit, peacock, Hitchcock, cockatoo.
    "cock": r"\w*cocksuck\w*|cock(?:head|heads|face|faces|womble|wombles|bite|bites|munch\w*|sucker|suckers)",
    # dick compounds (bare "dick" is handled by case: see is_bare_dick)
    "dick": rf"dick{_alt(DICK_SUFFIXES)}",
    # ass, asshole, dumbass, jackass; not assassin, class, bass, passage, mass, Essex.
    "ass": rf"{_alt(ASS_PREFIXES)}?ass{_alt(ASS_SUFFIXES)}?",
    "arse": rf"{_alt(ASS_PREFIXES)}?arse(?:hole|holes|wipe|wipes|face|faces|licker|lickers|d|s|y|bandit|holery)?",
    "bitch": r"\w*bitch\w*|b(?:ia|ya|eyo|eeyo|iyo|io)tch(?:es|ez|y|ing)?",
    "bastard": r"\w*bastard\w*",
    "piss": rf"piss{_alt(PISS_SUFFIXES)}?",
    "twat": r"twat(?:s|ty|ted|waffle|waffles|face|faces)?",
    "wank": r"wank(?:er|ers|ed|ing|s|y|stain|stains|sta|ered|hole|holes)?",
    "bollock": r"bollock(?:s|ing|ings|ed)?",
    "slut": r"slut(?:s|ty|tier|tish|tiness)?",
    "whore": r"whor(?:e|es|ed|ing|ish|ehouse|ehouses|emonger|emongers|ebag|ebags)",
    "faggot": r"faggot(?:s|ry|y)?",
    "nigger": r"nigg(?:er|ers|a|as|az|ah|uh)",
}

PATTERNS = [re.compile(p) for p in RULES.values()]
_BARE_DICK = re.compile(r"dicks?")


def match(word: str) -> bool:
    return any(p.fullmatch(word) for p in PATTERNS)


def is_bare_dick(original: str, normalised: str) -> bool:
    """"dick"/"dicks" in lower case is the insult; capitalised it is usually the name (Dick Cheney)."""
    return bool(_BARE_DICK.fullmatch(normalised)) and not original[:1].isupper()
