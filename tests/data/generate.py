"""Writes the small synthetic data sets of this folder (written for the tests).

Every sentence is made up from the templates and word lists below; nothing is
taken from a published corpus. Run from the repository root to regenerate:

    python -m tests.data.generate

- `topics/{train,dev,test}.tsv`: 4-class topic classification (business,
  science, sports, world) with GLUE's `sentence<TAB>label` header.
- `squad_tiny/{train,dev}.json`: SQuAD v1.1 format; short biographies of
  made-up people, questions about where they live, what they do and what
  they own. Several people per context, so the question must be read.
- `conll_tiny/{train,dev}.txt`: CoNLL format (`word tag`), IOB2 tags for
  PER, LOC and ORG.
"""

import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))

TEAMS = ["lions", "eagles", "rovers", "united", "tigers", "rangers", "sharks", "wolves"]
PLAYERS = ["garcia", "okafor", "lindqvist", "tanaka", "moreau", "silva", "kowalski", "nguyen"]
EVENTS = ["the cup final", "the league opener", "the semifinal", "the derby", "the playoffs"]
COMPANIES = ["northwind", "acme", "globex", "initech", "umbrella", "vandelay", "hooli", "stark"]
PRODUCTS = ["phones", "cars", "chips", "software", "loans", "shoes", "tablets", "batteries"]
UNIVERSITIES = ["oxford", "stanford", "eth zurich", "mit", "kyoto university", "the sorbonne"]
DISCOVERIES = ["species of frog", "exoplanet", "antibiotic", "fossil", "protein", "comet"]
COUNTRIES = ["france", "brazil", "kenya", "japan", "canada", "india", "egypt", "norway"]
ISSUES = ["trade agreement", "border dispute", "climate treaty", "refugee crisis", "ceasefire"]

TOPIC_TEMPLATES = {
    "sports": [
        "the {team} beat the {team2} in {event}",
        "{player} scored twice as the {team} won {event}",
        "the {team} coach praised {player} after {event}",
        "injury keeps {player} out of {event} for the {team}",
        "fans cheered as the {team} lifted the trophy",
    ],
    "business": [
        "{company} shares rose sharply after strong quarterly earnings",
        "{company} will cut jobs as demand for {product} falls",
        "investors welcome the merger of {company} and {company2}",
        "{company} reports record profit on sales of {product}",
        "the stock market fell as {company} warned about {product} prices",
    ],
    "science": [
        "researchers at {university} discovered a new {discovery}",
        "a telescope team at {university} found an unusual {discovery}",
        "scientists publish a study on a rare {discovery}",
        "a new experiment at {university} measures gravity with lasers",
        "biologists describe a {discovery} never seen before",
    ],
    "world": [
        "leaders of {country} and {country2} signed a {issue}",
        "the president of {country} met officials to discuss the {issue}",
        "protests continue in {country} over the {issue}",
        "{country} recalls its ambassador amid the {issue}",
        "talks between {country} and {country2} on the {issue} stall",
    ],
}


def _fill(template, rng):
    def two(values):
        first, second = rng.sample(values, 2)
        return first, second

    team, team2 = two(TEAMS)
    company, company2 = two(COMPANIES)
    country, country2 = two(COUNTRIES)
    return template.format(
        team=team, team2=team2, player=rng.choice(PLAYERS), event=rng.choice(EVENTS),
        company=company, company2=company2, product=rng.choice(PRODUCTS),
        university=rng.choice(UNIVERSITIES), discovery=rng.choice(DISCOVERIES),
        country=country, country2=country2, issue=rng.choice(ISSUES),
    )


def write_topics(rng):
    directory = os.path.join(HERE, "topics")
    os.makedirs(directory, exist_ok=True)
    for split, count in (("train", 200), ("dev", 40), ("test", 40)):
        rows = []
        for i in range(count):
            label = sorted(TOPIC_TEMPLATES)[i % 4]
            rows.append((_fill(rng.choice(TOPIC_TEMPLATES[label]), rng), label))
        rng.shuffle(rows)
        with open(os.path.join(directory, f"{split}.tsv"), "w", encoding="utf-8") as f:
            f.write("sentence\tlabel\n")
            for sentence, label in rows:
                f.write(f"{sentence}\t{label}\n")


FIRST_NAMES = ["Alice", "Bruno", "Chiara", "Dmitri", "Esther", "Farid", "Greta", "Hiro",
               "Ines", "Jonas", "Keiko", "Lars", "Maya", "Nadia", "Omar", "Priya"]
CITIES = ["Lisbon", "Nairobi", "Oslo", "Lima", "Osaka", "Quebec", "Tunis", "Dublin",
          "Hanoi", "Seville", "Krakow", "Perth"]
JOBS = ["baker", "pilot", "nurse", "architect", "violinist", "plumber", "chemist", "farmer",
        "librarian", "surgeon"]
PETS = ["a parrot", "two cats", "a tortoise", "a greyhound", "three goldfish", "a rabbit",
        "a hamster", "a pony"]


def _biography(rng, people):
    sentences, facts = [], {}
    for name in people:
        city, job, pet = rng.choice(CITIES), rng.choice(JOBS), rng.choice(PETS)
        facts[name] = {"city": city, "job": job, "pet": pet}
        sentences.append(
            rng.choice(
                [
                    f"{name} lives in {city} and works as a {job}.",
                    f"{name} works as a {job} and lives in {city}.",
                ]
            )
        )
        sentences.append(f"At home, {name} keeps {pet}.")
    return sentences, facts


def write_squad(rng):
    directory = os.path.join(HERE, "squad_tiny")
    os.makedirs(directory, exist_ok=True)
    questions = {
        "city": ["Where does {name} live?", "In which city does {name} live?"],
        "job": ["What does {name} work as?", "What is the job of {name}?"],
        "pet": ["What does {name} keep at home?", "Which animals does {name} keep?"],
    }
    for split, num_contexts in (("train", 48), ("dev", 16)):
        paragraphs = []
        for c in range(num_contexts):
            people = rng.sample(FIRST_NAMES, 3)
            sentences, facts = _biography(rng, people)
            context = " ".join(sentences)
            qas = []
            for q in range(3):
                name = people[q]
                relation = rng.choice(sorted(questions))
                answer = facts[name][relation]
                # The answer inside the sentence about this person.
                anchor = context.index(name + " ")
                if relation == "pet":
                    anchor = context.index(f"{name} keeps")
                start = context.index(answer, anchor)
                qas.append(
                    {
                        "id": f"{split}-{c}-{q}",
                        "question": rng.choice(questions[relation]).format(name=name),
                        "answers": [{"text": answer, "answer_start": start}],
                    }
                )
            paragraphs.append({"context": context, "qas": qas})
        # One paragraph per line: small diffs, few lines.
        with open(os.path.join(directory, f"{split}.json"), "w", encoding="utf-8") as f:
            f.write(f'{{"version": "1.1", "data": [{{"title": "synthetic-{split}", "paragraphs": [\n')
            f.write(",\n".join(json.dumps(p) for p in paragraphs))
            f.write("\n]}]}\n")


SURNAMES = ["Okafor", "Lindqvist", "Tanaka", "Moreau", "Silva", "Kowalski", "Nguyen", "Haddad"]
ORGS = [["Acme", "Corp"], ["Globex"], ["Initech"], ["Red", "Cross"], ["Northwind", "Bank"],
        ["United", "Nations"]]
NER_TEMPLATES = [
    "{PER} visited {LOC} last week .",
    "{PER} joined {ORG} in {LOC} .",
    "{ORG} opened an office in {LOC} .",
    "{PER} met {PER2} at {ORG} .",
    "officials from {ORG} arrived in {LOC} on monday .",
    "{PER} said {ORG} will grow .",
]


def _ner_sentence(rng):
    template = rng.choice(NER_TEMPLATES)
    words, tags = [], []
    for token in template.split():
        if token.startswith("{"):
            kind = token.strip("{}").rstrip("2")
            if kind == "PER":
                entity = [rng.choice(FIRST_NAMES), rng.choice(SURNAMES)][: rng.choice([1, 2])]
            elif kind == "LOC":
                entity = [rng.choice(CITIES)]
            else:
                entity = rng.choice(ORGS)
            words.extend(entity)
            tags.extend([f"B-{kind}"] + [f"I-{kind}"] * (len(entity) - 1))
        else:
            words.append(token)
            tags.append("O")
    return words, tags


def write_conll(rng):
    directory = os.path.join(HERE, "conll_tiny")
    os.makedirs(directory, exist_ok=True)
    for split, count in (("train", 48), ("dev", 16)):
        with open(os.path.join(directory, f"{split}.txt"), "w", encoding="utf-8") as f:
            f.write("-DOCSTART- O\n\n")
            for _ in range(count):
                words, tags = _ner_sentence(rng)
                for word, tag in zip(words, tags):
                    f.write(f"{word} {tag}\n")
                f.write("\n")


def main():
    rng = random.Random(20240611)
    write_topics(rng)
    write_squad(rng)
    write_conll(rng)


if __name__ == "__main__":
    main()
