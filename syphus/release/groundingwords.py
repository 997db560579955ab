"""Grounding words: the word lists the grounding check (``syphus.release.grounding``) reads.

Which words claim nothing (the genre's own words, closed-class words, position words), which general
words any instance supports, the words that cue a noun or a predicate, colours, number words, VIST's
placeholders, and the words of a denial. Each list is data: extend it here, and a test in
``tests/test_grounding.py`` with the case that needed it.
"""

from __future__ import annotations

# Words any answer about a picture or a clip uses; saying them claims nothing about the content.
GENRE = frozenset("""
image images picture pictures photo photos photograph video videos clip clips scene scenes frame frames
footage shot shots view camera moment moments sequence setting background foreground detail details
caption captions annotation description part parts side sides area areas middle center centre top bottom
front back left right beginning end start point way thing things something someone somebody anyone
individual individuals figure figures kind type lot number total couple pair group mark timestamp timestamps
edge edges corner corners second seconds minute minutes instant bit time times day days year years hour hours week weeks month months
action actions event events activity activities change changes difference differences step steps
""".split())

# A general word is supported by any of its instances.
GENERAL = {
    "person": frozenset("""man men woman women boy girl child children kid kids teenager teenagers lady
        ladies guy guys baby adult adults rider cyclist player players wearer owner people person couple
        family friend friends mother father grandmother grandfather grandma grandpa husband wife worker
        chef cook student teacher customer someone""".split()),
    "vehicle": frozenset("car cars van truck bus suv bicycle bike motorcycle scooter train boat taxi".split()),
    "animal": frozenset("dog dogs cat cats horse horses bird birds cow sheep elephant giraffe zebra bear".split()),
    "fruit": frozenset("apple apples orange oranges banana bananas grape grapes pear lemon".split()),
    "furniture": frozenset("chair chairs table tables couch sofa bed desk wardrobe shelf cabinet bench".split()),
}
# Other spellings of a noun, and the plural of each general word. A synonym maps to the word it shares a
# meaning with (both sides then support each other); the key must be a noun only (never a verb: 'chef',
# not 'cook'), since every key is read as a noun.
ALIASES = {"people": "person", "persons": "person", "grey": "gray", "colour": "color", "bike": "bike",
           "bicycle": "bike", "kids": "kid", "children": "child", "tv": "television", "fridge": "fridge",
           "chef": "cook", "firefighter": "fireman", "firefighters": "fireman", "firemen": "fireman",
           "teen": "teenager", "teens": "teenager", "dad": "father", "daddy": "father", "mom": "mother",
           "mum": "mother", "hallway": "corridor", "ocean": "sea", "biker": "cyclist", "bicyclist": "cyclist",
           "crowd": "person", "crowds": "person", "luggage": "suitcase", "kitten": "cat", "puppy": "dog",
           "automobile": "car", "pigeon": "bird", "pigeons": "bird", "seagull": "bird", "seagulls": "bird",
           "gull": "bird", "gulls": "bird", "sparrow": "bird", "sparrows": "bird"}
for _general, _members in GENERAL.items():
    ALIASES.update({f"{_general}s": _general})

# Closed-class words (determiners, pronouns, prepositions, conjunctions): never claims, though a lemmatiser
# may also list them as nouns (while, each, another, inside).
FUNCTION = frozenset("""a an the this that these those his her hers their theirs its my mine your yours our ours
some any each every either neither no none another other others such all both few many much more most several
while whereas although though because since until unless whether if then than as so yet also too very just
after before during behind beside besides between beyond inside outside within without near across along
around among towards toward onto into upon over under above below through throughout about against via per
i me he him she it they them we us you who whom whose which what whatever whoever where when how why here there
itself himself herself themselves everyone everybody everything anybody anything nobody nothing somebody
last next previous final former latter extra additional same different whole entire rest remaining various certain
yourself yourselves myself ourselves up down out off away back forward forwards upward downward apart aside
""".split())

# A word before a noun-or-verb (rides, watches) that marks it as a noun (the watches, two rides).
NOUN_CUES = frozenset("""a an the this that these those his her their its my your our some any each every no
several many few more most other another of on in at with by from onto into near behind under over beside for
""".split())

# A word right after these is a predicate (is visible, looks calm), not an object: a noun there takes a
# determiner (is a dog), which is looked at instead.
PREDICATE_CUES = frozenset("is are was were be been being am seems seem seemed looks look looked appears appear "
                           "appeared feels feel felt becomes become became remains remain not very quite too rather "
                           "fairly really so".split())

COLOURS = frozenset("""red orange yellow green blue purple pink brown black white gray grey silver gold
golden beige tan navy maroon violet turquoise teal cyan magenta""".split())

NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS.update({w: 10 * i for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)})
NUMBER_WORDS.update({"hundred": 100, "dozen": 12, "both": 2, "pair": 2, "couple": 2, "twice": 2, "once": 1, "single": 1})

# Placeholders VIST puts where a story named someone or somewhere: each supports the words that stand for it.
PLACEHOLDERS = {"[male]": "man boy guy gentleman he", "[female]": "woman girl lady she",
                "[location]": "place location", "[organization]": "organization group team company"}

ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
            "ninth": 9, "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6}

ONE_PRONOUN = frozenset("the this that each every another other which last next no".split())
OWN_PARTS = frozenset("things ways details parts points steps actions events activities kinds types reasons".split())
PLURAL_PRONOUN = frozenset("both these those all".split())
OBJECT_PRONOUN = frozenset("it them him me us".split())
NEGATORS = frozenset("no without nor neither not never".split())
NOT_NEGATING = frozenset("one longer matter doubt more less sooner".split())  # no one, no longer, not more than
DENIAL_ENDS = frozenset("but while whereas although though yet instead rather".split())
DENIAL_REACH = 6  # tokens after a negator that its denial covers, within one clause

# Adverbs that may stand between 'be' and its predicate (are now standing); any other -ly word may too.
STANDING_ADVERBS = frozenset("now still already also just all both even again then yet".split())

# Determiners: a noun-or-verb right before one is a verb with its object (set the eggs down).
DETERMINERS = frozenset("a an the this that these those his her their its my your our".split())

# Particles: a noun-or-verb right before one is a phrasal verb (set up, hang out), not a noun.
PARTICLES = frozenset("up down out off away back".split())
