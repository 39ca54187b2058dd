#!/usr/bin/env python3
"""Converts a SQuAD v1.1 file into a kvrag corpus and question file.

  python3 scripts/squad_to_kvrag.py ../shared/data/squad-v1.1/dev-v1.1.json OUT_DIR \
      [--questions 2000] [--seed 0]

writes
  OUT_DIR/corpus.jsonl     one document per paragraph:
                           {"id": "squad-AAA-PPP", "title": article title, "text": context}
                           (AAA = article index, PPP = paragraph index in the article, both
                           0-based, zero-padded), in file order. SQuAD dev v1.1: 2,067 lines.
  OUT_DIR/questions.jsonl  {"question", "answers": [distinct answer texts, first-given
                           first], "document_id": the paragraph's id} for the first
                           --questions questions after shuffling all questions (in file
                           order) with Python's random.Random(seed).shuffle.

`kvrag eval --questions OUT_DIR/questions.jsonl` then scores document recall: is a chunk of
the question's own paragraph among the top k. Standard library only; the data is read from
where it lies and nothing of it is meant to be committed (SQuAD is CC BY-SA 4.0).
"""
import argparse
import json
import os
import random
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("squad", help="SQuAD v1.1 JSON file (e.g. dev-v1.1.json)")
    parser.add_argument("out_dir")
    parser.add_argument("--questions", type=int, default=2000,
                        help="how many questions to keep after shuffling (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with open(args.squad, encoding="utf-8") as f:
        squad = json.load(f)
    os.makedirs(args.out_dir, exist_ok=True)

    documents = []
    questions = []
    for a, article in enumerate(squad["data"]):
        title = article["title"].replace("_", " ")
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"squad-{a:03d}-{p:03d}"
            documents.append({"id": doc_id, "title": title, "text": paragraph["context"]})
            for qa in paragraph["qas"]:
                answers = []
                for answer in qa["answers"]:
                    text = answer["text"].strip()
                    if text and text not in answers:
                        answers.append(text)
                if not answers or not qa["question"].strip():
                    continue
                questions.append({"question": qa["question"].strip(), "answers": answers,
                                  "document_id": doc_id})

    random.Random(args.seed).shuffle(questions)
    if args.questions > 0:
        questions = questions[: args.questions]

    with open(os.path.join(args.out_dir, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for d in documents:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    with open(os.path.join(args.out_dir, "questions.jsonl"), "w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    print(f"{len(documents)} documents, {len(questions)} questions -> {args.out_dir}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
