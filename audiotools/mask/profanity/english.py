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
ASS_PREFIXES = [
    "dumb",
    "jack",
    "smart",
    "fat",
    "bad",
    "kick",
    "lard",
    "hard",
    "wise",
    "half",
    "candy",
    "kiss",
    "lazy",
    "big",
    "sweet",
    "tight",
    "cheap",
    "dip",
    "stupid",
    "wiseass",
    "sorry",
    "broke",
    "dumbass",
    "punk",
    "tough",
    "crazy",
    "sissy",
    "silly",
    "lame",
    "pompous",
    "mega",
    "bad",
    "grab",
    "bare",
    "pain",
    "hairy",
    "horse",
    "rat",
    "weak",
    "puss",
]
SHIT_PREFIXES = [
    "bull",
    "horse",
    "dip",
    "bat",
    "chicken",
    "ape",
    "dog",
    "cow",
    "holy",
    "jack",
    "pig",
    "bird",
    "dumb",
    "ass",
    "hot",
    "lil",
    "little",
    "no",
    "god",
    "deep",
    "hard",
    "tough",
    "big",
    "cat",
    "rat",
    "bear",
    "dick",
    "pile",
    "pieceof",
    "crock",
    "crockof",
    "eat",
    "sheep",
    "goat",
    "ox",
    "elephant",
    "bullshit",
    "holyshit",
    "mouse",
    "pot",
    "tosh",
    "un",
    "super",
    "mega",
    "apes",
    "chicken",
]
CUNT_PREFIXES = [
    "dumb",
    "stupid",
    "thick",
    "silly",
    "fat",
    "sick",
    "lazy",
    "mega",
    "super",
    "daft",
    "smart",
    "shit",
    "ugly",
]
# Second halves of compounds (asshole, shitstorm, dickweed, cuntface, pisshead ...).
HEADS = [
    "hole",
    "hat",
    "wipe",
    "face",
    "clown",
    "kiss",
    "kisser",
    "lick",
    "licker",
    "munch",
    "muncher",
    "bag",
    "wad",
    "head",
    "crack",
    "load",
    "bandit",
    "jack",
    "jacker",
    "monkey",
    "nugget",
    "wagon",
    "show",
    "storm",
    "stain",
    "list",
    "post",
    "talk",
    "talker",
    "box",
    "fit",
    "kick",
    "kicker",
    "house",
    "pile",
    "stick",
    "bird",
    "brain",
    "brained",
    "can",
    "heel",
    "hook",
    "heap",
    "lord",
    "work",
    "hawk",
    "hammer",
    "hammered",
    "flap",
    "rag",
    "muscle",
    "wit",
    "weed",
    "nose",
    "smack",
    "suck",
    "sucker",
    "cheese",
    "burger",
    "fest",
    "nut",
    "tard",
    "boy",
    "buddy",
    "hound",
    "weasel",
    "goblin",
    "knuckle",
    "lamp",
    "bucket",
    "fuck",
    "shit",
    "cunt",
    "ass",
    "waffle",
    "tastic",
    "fart",
    "gasket",
    "hat",
    "pot",
    "take",
    "off",
    "up",
    "poor",
    "artist",
    "ant",
    "weak",
    "canned",
    "loaded",
    "people",
    "holery",
    "hattery",
    "posting",
    "faced",
    "ridden",
    "mouth",
    "trap",
    "bomb",
]
# Endings after a root or a compound head; each root takes those that make words of it.
SHIT_ENDINGS = [
    "s",
    "ty",
    "tier",
    "tiest",
    "tiness",
    "ting",
    "tings",
    "ted",
    "ter",
    "ters",
    "e",
    "es",
    "y",
    "ey",
    "less",
    "ful",
    "ing",
    "ings",
    "ed",
    "er",
    "ers",
    "ery",
    "ry",
    "ish",
]
ASS_ENDINGS = ["es", "ed", "ery", "ry", "ing", "ings", "s", "ish", "y", "er", "ers"]
CUNT_ENDINGS = ["s", "ing", "ish", "ishness", "y", "ier", "ed", "er", "ers", "ery"]
DICK_ENDINGS = ["s", "ed", "ing", "ish", "less", "ery", "ishness", "ry"]
PISS_ENDINGS = ["ed", "es", "ing", "er", "ers", "y", "s"]
WANK_ENDINGS = ["er", "ers", "ery", "ed", "ing", "s", "y", "sta", "ered", "ering"]


def _tail(endings, heads=True, bare_endings=None) -> str:
    """(compound head)? (ending)? -- with heads, endings may follow the head (assholes)."""
    e = _alt(endings)
    if not heads:
        return f"{e}?"
    be = _alt(bare_endings) if bare_endings else e
    return f"(?:{_alt(HEADS)}{e}?|{be})?"


def _alt(items) -> str:
    items = sorted(set(items), key=len, reverse=True)
    return "(?:" + "|".join(re.escape(i) for i in items) + ")"


RULES: dict[str, str] = {
    # fuck anywhere (no ordinary English word contains it): motherfucker, clusterfuck, fuckwit ...
    "fuck": r"\w*fuck\w*",
    # fuk/fck spellings only as whole words with endings: not Fukuoka, Fukushima.
    # (not Fuca, Phuc: "fuc" is no spelling of its own)
    "fuk": r"(?:mother|motha|mutha|mofo)?(?:fuk|fck|fcuk|phuk|fuq)"
    r"(?:s|ed|d|er|ers|in|ing|ings|ery|wit|head|face|off|up|tard|boy|all)?",
    "mofo": r"mofos?",
    "shit": rf"{_alt(SHIT_PREFIXES)}?shit{_tail(SHIT_ENDINGS)}",
    "cunt": rf"{_alt(CUNT_PREFIXES)}?cunt{_tail(CUNT_ENDINGS)}",
    # cock only in compounds: not cocktail, cockpit, peacock, Hitchcock, cockatoo, cocked.
    "cock": r"\w*cocksuck\w*|cock(?:head|heads|face|faces|womble|wombles|bite|bites|munch\w*|sucker|suckers)",
    # dick compounds (bare "dick" is handled by case: see is_bare_dick); not dicker/dickering
    # (to haggle), dicky (a dicky bow), Dickens, Dickson.
    "dick": rf"dick(?:{_alt(HEADS)}{_alt(DICK_ENDINGS)}?|{_alt(DICK_ENDINGS[1:])})",
    # ass, asshole, dumbass, jackass; not assassin, class, bass, passage, mass, Essex, asset.
    # ("asser"/"assy" only after a compound first half: "smartassy"; bare they are other words.)
    "ass": rf"(?:{_alt(ASS_PREFIXES)}ass{_tail(ASS_ENDINGS)}"
    rf"|ass{_tail(ASS_ENDINGS, bare_endings=['es', 'ed', 'ery', 'ing'])})",
    "arse": rf"{_alt(ASS_PREFIXES)}?arse(?:{_alt(HEADS)}{_alt(ASS_ENDINGS)}?|d|s|y|ing)?",
    "bitch": r"\w*bitch\w*|b(?:ia|ya|eyo|eeyo|iyo|io)tch(?:es|ez|y|ing)?",
    "bastard": r"\w*bastard\w*",
    "piss": rf"piss{_tail(PISS_ENDINGS)}",
    "twat": r"twat(?:s|ty|ted|waffle|waffles|face|faces)?",
    "wank": rf"wank{_tail(WANK_ENDINGS)}",
    "bollock": r"bollock(?:s|ses)?(?:ing|ings|ed|y)?",
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
    """ "dick"/"dicks" in lower case is the insult; capitalised it is usually the name (Dick Cheney)."""
    return bool(_BARE_DICK.fullmatch(normalised)) and not original[:1].isupper()
