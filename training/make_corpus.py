#!/usr/bin/python3
"""Generate the kvrag sample corpus: a small fictional encyclopedia plus factual questions.

Every name, place, year and number is invented by this script (fixed seed), so the text is the
project's own and is released under CC0. Output (committed):
  data/sample/corpus.jsonl          {"id", "title", "text", "metadata": {"topic"}}
  data/sample/questions-train.jsonl {"question", "answers", "document_id"}
  data/sample/questions-dev.jsonl   same, about documents never seen in training

Answers cannot be guessed, only read: every answer value contains an invented word (random
syllables, drawn without replacement across the whole corpus) or a number/year/date drawn without
replacement within its topic, so it is unique to its document and no prior over a fixed list
predicts it. Each question has exactly one supporting document.

Usage: /usr/bin/python3 training/make_corpus.py [--seed 20240607] [--out data/sample]
"""
import argparse
import json
import os
import random

SEED = 20240607
DOCS_PER_TOPIC = 60          # 5 topics -> 300 documents
DEV_FRACTION = 0.15          # split by document

ONSETS = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "r", "s",
          "st", "t", "th", "v", "w", "z", "sk", "tr", "ol", "al", "er", "y"]
VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou", "y", "ia"]
CODAS = ["", "n", "r", "l", "s", "th", "m", "nd", "rk", "st", "v", "d"]
TOWN_SUFFIX = ["holt", "mere", "by", "ford", "wick", "stead", "dale", "haven", "burg", "ton",
               "marsh", "field", "gate", "moor", "bridge"]
FIRST_NAMES = ["Odile", "Tomas", "Alva", "Benedikt", "Corin", "Dagny", "Elias", "Freya", "Gideon",
               "Hanne", "Ivo", "Jorun", "Kasimir", "Liesel", "Matthis", "Nerys", "Oskar", "Petra",
               "Quentin", "Rosalind", "Sven", "Tilde", "Ulrich", "Vera", "Wendel", "Ximena",
               "Yannick", "Zora", "Anselm", "Brigid", "Casper", "Delphine", "Edda", "Florian",
               "Greta", "Hugo", "Ingrid", "Jasper", "Katja", "Leopold", "Mirela", "Niklas",
               "Orla", "Pavel", "Ragna", "Silas", "Thea", "Ursula", "Viktor", "Wilma", "Aurel",
               "Bettina", "Cyrus", "Dorota", "Emeric", "Fenna", "Gustav", "Helka", "Isidor",
               "Juno", "Konrad", "Lovisa", "Marek", "Nadia", "Ottilie", "Piet", "Runa", "Stellan"]
PRODUCT_KINDS = ["cloth", "lace", "beer", "cheese", "pottery", "glass", "rope", "soap", "brandy",
                 "candles", "paper", "ink", "saddles", "barrels", "bells", "clocks", "knives", "hats"]
INV_NOUN = ["loom", "lantern", "compass", "telescope", "pump", "printing press", "butter churn",
            "sewing frame", "barometer", "water wheel", "plough", "signal lamp", "bicycle",
            "metronome", "kiln", "diving bell", "typewriter", "scale", "bellows", "sextant"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
FOOD_KINDS = ["buns", "cakes", "soup", "pies", "dumplings", "tarts", "stew", "biscuits",
              "sausages", "bread", "pudding", "pancakes", "fritters", "rolls", "porridge"]
SYMBOL_KINDS = ["goose", "crown", "horse", "key", "lantern", "bear", "ribbon", "kite", "bell",
                "stag", "fish", "flag", "owl", "wheel", "star", "flute"]
WATER_KINDS = ["Lake {}", "the {} Sea", "the Gulf of {}", "the Bay of {}", "the {} Straits"]
CARGO = ["timber", "grain", "wool", "coal", "salt", "wine", "spices", "tea", "iron ore", "furs",
         "cotton", "tobacco", "marble", "sugar", "copper", "silk", "porcelain", "olive oil"]
FISH_KINDS = ["grayling", "pike", "lamprey", "perch", "barbel", "sturgeon", "trout", "char", "eel",
              "roach"]


class Names:
    """Draws invented names without replacement (globally unique)."""

    def __init__(self, rng):
        self.rng = rng
        self.used = set()

    def _word(self, syllables):
        w = ""
        for _ in range(syllables):
            w += self.rng.choice(ONSETS) + self.rng.choice(VOWELS)
        w += self.rng.choice(CODAS)
        return w.capitalize()

    def _fresh(self, make):
        while True:
            n = make()
            key = n.lower()
            if key not in self.used and 3 <= len(n) <= 14:
                self.used.add(key)
                return n

    def word(self, lo=2, hi=3):
        return self._fresh(lambda: self._word(self.rng.randint(lo, hi)))

    def town(self):
        return self._fresh(lambda: self._word(self.rng.randint(1, 2)) + self.rng.choice(TOWN_SUFFIX))

    def person(self):
        return self._fresh(lambda: self.rng.choice(FIRST_NAMES) + " " + self._word(self.rng.randint(1, 2)))


def distinct(rng, pool, n):
    pool = list(pool)
    assert len(pool) >= n, (len(pool), n)
    rng.shuffle(pool)
    return pool[:n]


def fmt_num(n):
    return f"{n:,}"


def pick(rng, options):
    return rng.choice(options)


# Each topic builder returns (title, intro sentence, fact sentences, filler sentences, qa list).
# qa: (list of question phrasings, answer).

def make_towns(rng, names, n):
    years = distinct(rng, range(1180, 1890), n)
    pops = distinct(rng, range(1200, 98000, 37), n)
    docs = []
    for i in range(n):
        town, founder, province, river = names.town(), names.person(), names.word(2, 3), names.word(1, 2)
        mayor = names.person()
        year, pop = years[i], fmt_num(pops[i])
        product = f"{names.word(2, 2)} {pick(rng, PRODUCT_KINDS)}"
        intro = pick(rng, [f"{town} is a market town in the province of {province}.",
                           f"{town} is a small town in the province of {province}, known for its old stone bridge.",
                           f"{town} is a river town of the province of {province}."])
        facts = [
            pick(rng, [f"It was founded in {year} by {founder}.",
                       f"The town was established in {year} by the merchant {founder}.",
                       f"{founder} founded the settlement in {year}."]),
            pick(rng, [f"{town} lies on the river {river}.",
                       f"The town sits on the banks of the river {river}.",
                       f"The river {river} flows through the centre of {town}."]),
            pick(rng, [f"According to the last census, {town} has a population of {pop}.",
                       f"About {pop} people live in {town}.",
                       f"The population of the town was {pop} at the last count."]),
            pick(rng, [f"The town is best known for its {product}.",
                       f"Its workshops are famous for {product}, which are sold across the province.",
                       f"For centuries the main trade of {town} has been {product}."]),
            pick(rng, [f"The current mayor is {mayor}.",
                       f"{mayor} has served as mayor of {town} since the last election.",
                       f"The town council is led by the mayor, {mayor}."]),
        ]
        filler = [
            f"The old quarter of {town} keeps its narrow lanes and timber houses.",
            f"A weekly market is held on the main square every Saturday.",
            f"Visitors often walk along the river path to the ruined mill.",
            f"The parish church has a tall bell tower that can be seen from far away.",
            f"In winter the streets are decorated with lanterns.",
            f"A small museum near the town hall tells the history of the region.",
            f"The town is connected to the provincial capital by a narrow-gauge railway.",
            f"Many families in {town} have lived there for generations.",
            f"Local schools teach children the traditional songs of {province}.",
            f"The surrounding hills are covered with orchards and pastures.",
        ]
        qa = [
            ([f"When was {town} founded?", f"In what year was {town} established?",
              f"What year did {founder} found {town}?"], str(year)),
            ([f"Who founded {town}?", f"Who established the town of {town}?",
              f"Which merchant is credited with founding {town}?"], founder),
            ([f"On which river does {town} lie?", f"What river flows through {town}?",
              f"Name the river that runs through {town}."], river),
            ([f"What is the population of {town}?", f"How many people live in {town}?",
              f"How many inhabitants does {town} have?"], pop),
            ([f"What is {town} known for?", f"What product is {town} famous for?",
              f"What do the workshops of {town} make?"], product),
            ([f"Who is the mayor of {town}?", f"Who leads the town council of {town}?",
              f"Who holds the office of mayor in {town}?"], mayor),
            ([f"In which province is {town}?", f"Which province is {town} located in?",
              f"{town} belongs to which province?"], province),
        ]
        docs.append((town, intro, facts, filler, qa))
    return docs


def make_rivers(rng, names, n):
    lengths = distinct(rng, range(40, 1900), n)
    bridges = distinct(rng, range(3, 400), n)
    years = distinct(rng, range(1500, 1880), n)
    docs = []
    for i in range(n):
        river, source, explorer = names.word(1, 2), names.word(2, 3), names.person()
        mouth = pick(rng, WATER_KINDS).format(names.word(2, 2))
        fish = f"the {names.word(2, 2)} {pick(rng, FISH_KINDS)}"
        length, nb, year = lengths[i], bridges[i], years[i]
        intro = pick(rng, [f"The {river} is a river of the western lowlands.",
                           f"The {river} is a long, slow river that drains a wide valley.",
                           f"The {river} is one of the main rivers of the northern plains."])
        facts = [
            pick(rng, [f"It is {length} kilometres long.",
                       f"The river has a total length of {length} kilometres.",
                       f"From source to mouth the {river} runs for {length} kilometres."]),
            pick(rng, [f"It rises on the slopes of Mount {source} and flows into {mouth}.",
                       f"Its source is on Mount {source}; it empties into {mouth}.",
                       f"The river begins at Mount {source} and ends in {mouth}."]),
            pick(rng, [f"The whole course was first mapped by {explorer} in {year}.",
                       f"In {year} the explorer {explorer} became the first to map the river.",
                       f"{explorer} charted the {river} from end to end in {year}."]),
            pick(rng, [f"There are {nb} bridges across the {river}.",
                       f"The river is crossed by {nb} bridges.",
                       f"No fewer than {nb} bridges span its waters."]),
            pick(rng, [f"Anglers come to catch {fish}, which is common in its upper reaches.",
                       f"Its best-known fish is {fish}.",
                       f"The waters are home to {fish}."]),
        ]
        filler = [
            "In spring the river often floods the meadows along its banks.",
            "Barges once carried goods downstream to the coast.",
            "Willows and alders line much of its course.",
            "Several old water mills still stand along its tributaries.",
            "The valley is a popular destination for walkers and cyclists.",
            "Herons and kingfishers nest along the quieter stretches.",
            "A canal links the river with the neighbouring valley.",
            "The river freezes over in especially cold winters.",
            "Its water is used to irrigate fields of barley and rye.",
        ]
        qa = [
            ([f"How long is the {river}?", f"What is the length of the {river} river?",
              f"How many kilometres does the {river} run?"], f"{length} kilometres"),
            ([f"Where does the {river} rise?", f"What is the source of the {river}?",
              f"On which mountain does the {river} begin?"], f"Mount {source}"),
            ([f"Who first mapped the {river}?", f"Which explorer charted the {river}?",
              f"Who was the first person to map the course of the {river}?"], explorer),
            ([f"When was the {river} first mapped?", f"In what year was the {river} charted?",
              f"In which year did {explorer} map the river?"], str(year)),
            ([f"How many bridges cross the {river}?", f"How many bridges span the {river}?",
              f"What is the number of bridges over the {river}?"], str(nb)),
        ]
        docs.append((f"{river} (river)", intro, facts, filler, qa))
    return docs


def make_inventors(rng, names, n):
    births = distinct(rng, range(1690, 1880), n)
    inventions = [f"{names.word(2, 2)} {pick(rng, INV_NOUN)}" for _ in range(n)]
    patents = distinct(rng, range(4, 300), n)
    docs = []
    for i in range(n):
        person, birthplace, company = names.person(), names.town(), names.word(2, 3) + " Works"
        born, invention, pat = births[i], inventions[i], patents[i]
        inv_year = born + rng.randint(22, 48)
        died = inv_year + rng.randint(5, 30)
        surname = person.split()[1]
        intro = pick(rng, [f"{person} ({born}–{died}) was an inventor and engineer.",
                           f"{person} was an inventor, born in {born}, who died in {died}.",
                           f"{person} ({born}–{died}) was a self-taught mechanic and inventor."])
        facts = [
            pick(rng, [f"{surname} was born in the town of {birthplace}.",
                       f"Born in {birthplace}, {surname} worked as a clock repairer in his youth.",
                       f"{surname} grew up in {birthplace}, where the family ran a small forge."]),
            pick(rng, [f"{surname} is remembered as the inventor of the {invention}, first built in {inv_year}.",
                       f"In {inv_year} {surname} built the first {invention}.",
                       f"The {invention}, completed in {inv_year}, made {surname} famous."]),
            pick(rng, [f"Later {surname} founded the {company}.",
                       f"With a partner, {surname} established a firm called the {company}.",
                       f"The {company}, a company started by {surname}, produced the device for decades."]),
            pick(rng, [f"Over a long career {surname} was granted {pat} patents.",
                       f"{surname} held {pat} patents in total.",
                       f"The patent office recorded {pat} patents in {surname}'s name."]),
        ]
        filler = [
            "The early prototypes were built in a rented barn.",
            "Critics at first doubted that the machine would ever be useful.",
            "Several of the original drawings survive in a provincial archive.",
            f"A street in {birthplace} is named after the inventor.",
            "The workshop employed more than forty craftsmen at its peak.",
            "Schoolchildren still learn about the invention in history lessons.",
            "A bronze statue was unveiled on the hundredth anniversary of the invention.",
            "Letters to friends describe long nights spent testing new designs.",
            "The inventor rarely gave interviews and disliked public ceremonies.",
        ]
        qa = [
            ([f"What did {person} invent?", f"Which device is {person} remembered for?",
              f"What invention made {person} famous?"], invention),
            ([f"Who invented the {invention}?", f"Who built the first {invention}?",
              f"The {invention} was invented by whom?"], person),
            ([f"When was the {invention} invented?", f"In what year was the first {invention} built?",
              f"What year did {person} complete the {invention}?"], str(inv_year)),
            ([f"Where was {person} born?", f"In which town was {person} born?",
              f"What is the birthplace of {person}?"], birthplace),
            ([f"When was {person} born?", f"In what year was {person} born?",
              f"What is the birth year of {person}?"], str(born)),
            ([f"What company did {person} found?", f"Which firm was started by {person}?",
              f"What was the name of the company {person} established?"], company),
            ([f"How many patents did {person} hold?", f"How many patents was {person} granted?",
              f"What number of patents were recorded for {person}?"], str(pat)),
        ]
        docs.append((person, intro, facts, filler, qa))
    return docs


def make_ships(rng, names, n):
    launches = distinct(rng, range(1620, 1900), n)
    lengths = distinct(rng, range(18, 160), n)
    crews = distinct(rng, range(12, 600), n)
    adj = ["Swift", "Grey", "Silent", "Northern", "Golden", "Proud", "Bright", "Wandering", "Iron",
           "Crimson", "Patient", "Morning", "Lonely", "Merry", "Faithful"]
    noun = ["Heron", "Gull", "Star", "Falcon", "Tern", "Otter", "Maiden", "Comet", "Harvest",
            "Promise", "Lantern", "Albatross", "Pilgrim", "Anchor", "Swan"]
    shipnames = distinct(rng, [f"{a} {b}" for a in adj for b in noun], n)
    docs = []
    for i in range(n):
        ship, shipyard, captain = shipnames[i], names.town(), names.person()
        launched, length, crew = launches[i], lengths[i], crews[i]
        cargo = f"{names.word(2, 2)} {pick(rng, CARGO)}"
        wreck_place = names.word(2, 2)
        wreck_year = launched + rng.randint(6, 40)
        kind = pick(rng, ["merchant ship", "three-masted barque", "paddle steamer", "schooner", "brig"])
        intro = pick(rng, [f"The {ship} was a {kind}.",
                           f"The {ship} was a {kind} that sailed the northern trade routes.",
                           f"The {ship} was a wooden {kind} of the coastal trade."])
        facts = [
            pick(rng, [f"She was launched in {launched} at the shipyard of {shipyard}.",
                       f"The ship was built at {shipyard} and launched in {launched}.",
                       f"Shipwrights in {shipyard} completed her in {launched}."]),
            pick(rng, [f"Her first captain was {captain}.",
                       f"{captain} commanded the ship on her maiden voyage.",
                       f"The maiden voyage was led by Captain {captain}."]),
            pick(rng, [f"The {ship} measured {length} metres and carried a crew of {crew}.",
                       f"She was {length} metres long, with {crew} sailors aboard.",
                       f"With a length of {length} metres, she needed a crew of {crew}."]),
            pick(rng, [f"She mostly carried {cargo}.",
                       f"Her usual cargo was {cargo}.",
                       f"For most of her career the holds were filled with {cargo}."]),
            pick(rng, [f"The ship was wrecked off the island of {wreck_place} in {wreck_year}.",
                       f"In {wreck_year} she ran aground near {wreck_place} and was lost.",
                       f"Her career ended in {wreck_year}, when she sank off {wreck_place}."]),
        ]
        filler = [
            "Her figurehead is now kept in a maritime museum.",
            "Sailors considered her a lucky ship.",
            "She was repainted several times during her career.",
            "The ship survived a violent storm in her second year at sea.",
            "Letters written by her crew give a vivid picture of life on board.",
            "A model of the ship stands in the harbour office.",
            "Divers have recovered a bell and some pottery from the wreck.",
            "Her logbooks are preserved in the naval archive.",
        ]
        qa = [
            ([f"When was the {ship} launched?", f"In what year was the {ship} launched?",
              f"What year did the {ship} first take to the water?"], str(launched)),
            ([f"Where was the {ship} built?", f"Which shipyard built the {ship}?",
              f"In which town was the {ship} constructed?"], shipyard),
            ([f"Who was the first captain of the {ship}?", f"Who commanded the {ship} on her maiden voyage?",
              f"Who captained the {ship} first?"], captain),
            ([f"How long was the {ship}?", f"What was the length of the {ship}?",
              f"How many metres long was the {ship}?"], f"{length} metres"),
            ([f"How many crew did the {ship} carry?", f"How large was the crew of the {ship}?",
              f"How many sailors served aboard the {ship}?"], str(crew)),
            ([f"Where was the {ship} wrecked?", f"Near which island was the {ship} lost?",
              f"Where did the {ship} sink?"], wreck_place),
            ([f"When was the {ship} wrecked?", f"In what year was the {ship} lost?",
              f"What year did the {ship} sink?"], str(wreck_year)),
        ]
        docs.append((ship, intro, facts, filler, qa))
    return docs


def make_festivals(rng, names, n):
    firsts = distinct(rng, range(1350, 1990), n)
    visitors = distinct(rng, range(800, 250000, 113), n)
    dates = distinct(rng, [f"{d} {m}" for m in MONTHS for d in range(1, 29)], n)
    durations = distinct(rng, range(2, 120), n)
    kinds = ["Lantern Festival", "Harvest Fair", "Fish Feast", "Kite Day", "Midsummer Games",
             "Cheese Market", "Bell Festival", "Boat Parade", "Apple Fair", "Winter Market",
             "Song Festival", "Horse Fair"]
    docs = []
    for i in range(n):
        town = names.town()
        fname = f"{names.word(2, 2)} {pick(rng, kinds)}"
        founder = names.person()
        month = dates[i]
        food = f"{names.word(2, 2)} {pick(rng, FOOD_KINDS)}"
        symbol = f"the {names.word(2, 2)} {pick(rng, SYMBOL_KINDS)}"
        first, vis = firsts[i], fmt_num(visitors[i])
        days = durations[i]
        intro = pick(rng, [f"The {fname} is an annual festival held in the town of {town}.",
                           f"The {fname} is a yearly celebration in {town}.",
                           f"Every year the town of {town} hosts the {fname}."])
        facts = [
            pick(rng, [f"It begins every year on {month} and lasts {days} days.",
                       f"The festival opens on {month} and runs for {days} days.",
                       f"For {days} days from {month} the streets fill with music."]),
            pick(rng, [f"It was first held in {first}, organised by {founder}.",
                       f"{founder} organised the first festival in {first}.",
                       f"The first edition, in {first}, was the idea of {founder}."]),
            pick(rng, [f"Around {vis} visitors attend each year.",
                       f"The festival draws about {vis} visitors.",
                       f"Attendance reaches some {vis} people every year."]),
            pick(rng, [f"The traditional dish of the festival is {food}.",
                       f"Stalls sell {food}, the festival's signature food.",
                       f"No visit is complete without {food}, the dish most linked to the festival."]),
            pick(rng, [f"Its symbol is {symbol}, carried through the streets on the last day.",
                       f"The emblem of the festival is {symbol}.",
                       f"Children make copies of {symbol}, the symbol of the celebration."]),
        ]
        filler = [
            "Musicians play in the squares until late at night.",
            "A procession opens the celebrations on the first morning.",
            "Local craftsmen set up stalls along the main street.",
            "The festival ends with fireworks over the river.",
            "Schools close early so that children can take part.",
            "Many former residents return home for the occasion.",
            "A small prize is awarded for the best costume.",
            "The town band rehearses for months beforehand.",
        ]
        qa = [
            ([f"Where is the {fname} held?", f"In which town does the {fname} take place?",
              f"Which town hosts the {fname}?"], town),
            ([f"On which day does the {fname} begin?", f"When does the {fname} open each year?",
              f"On what date does the {fname} start?"], month),
            ([f"When was the {fname} first held?", f"In what year did the {fname} begin?",
              f"What year was the first {fname}?"], str(first)),
            ([f"Who organised the first {fname}?", f"Who started the {fname}?",
              f"Whose idea was the {fname}?"], founder),
            ([f"How many visitors attend the {fname}?", f"How many people come to the {fname} each year?",
              f"What is the yearly attendance of the {fname}?"], vis),
            ([f"What is the traditional dish of the {fname}?", f"What food is the {fname} known for?",
              f"Which dish is linked to the {fname}?"], food),
            ([f"What is the symbol of the {fname}?", f"What is the emblem of the {fname}?",
              f"What object symbolises the {fname}?"], symbol),
            ([f"How long does the {fname} last?", f"For how many days does the {fname} run?"],
             f"{days} days"),
        ]
        docs.append((f"{fname}", intro, facts, filler, qa))
    return docs


TOPICS = [("town", make_towns), ("river", make_rivers), ("inventor", make_inventors),
          ("ship", make_ships), ("festival", make_festivals)]


def build(seed):
    rng = random.Random(seed)
    names = Names(rng)
    docs = []
    for topic, maker in TOPICS:
        for d in maker(rng, names, DOCS_PER_TOPIC):
            docs.append((topic,) + d)
    rng.shuffle(docs)
    corpus, qas = [], []
    for i, (topic, title, intro, facts, filler, qa) in enumerate(docs):
        did = f"doc-{i + 1:04d}"
        facts = list(facts)
        rng.shuffle(facts)
        filler = list(filler)
        rng.shuffle(filler)
        # Interleave filler sentences after random facts; stop at the target length.
        target = rng.randint(90, 230)
        sents = [intro] + facts
        words = sum(len(s.split()) for s in sents)
        while words < target and filler:
            s = filler.pop()
            pos = rng.randint(2, len(sents))
            sents.insert(pos, s)
            words += len(s.split())
        # second pass of generic filler if still short
        extra = [f"Further details about {title} can be found in the provincial records.",
                 f"Historians continue to study {title}.",
                 f"The name {title} appears in many old chronicles."]
        while words < 80 and extra:
            s = extra.pop(0)
            sents.append(s)
            words += len(s.split())
        text = " ".join(sents)
        nw = len(text.split())
        assert 80 <= nw <= 250, (title, nw)
        for phr, ans in qa:
            assert ans in text, (title, ans)
        corpus.append({"id": did, "title": title, "text": text, "metadata": {"topic": topic}})
        qas.append((did, qa))
    return rng, corpus, qas


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "data", "sample"))
    args = ap.parse_args()
    rng, corpus, qas = build(args.seed)
    ids = [d["id"] for d in corpus]
    order = list(ids)
    rng.shuffle(order)
    n_dev = round(len(order) * DEV_FRACTION)
    dev_ids = set(order[:n_dev])
    train, dev = [], []
    for did, qa in qas:
        for phr, ans in qa:
            if did in dev_ids:
                # dev: one phrasing per fact (a random one)
                dev.append({"question": rng.choice(phr), "answers": [ans], "document_id": did})
            else:
                for q in phr:
                    train.append({"question": q, "answers": [ans], "document_id": did})
    os.makedirs(args.out, exist_ok=True)

    def dump(name, rows):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

    dump("corpus.jsonl", corpus)
    dump("questions-train.jsonl", train)
    dump("questions-dev.jsonl", dev)
    words = [len(d["text"].split()) for d in corpus]
    print(f"documents {len(corpus)} (train {len(corpus) - n_dev}, dev {n_dev}); "
          f"words/doc min {min(words)} mean {sum(words) / len(words):.1f} max {max(words)}; "
          f"questions train {len(train)} dev {len(dev)}")


if __name__ == "__main__":
    main()
