"""The text side of the contract between the demo reader and the C++ pipeline: prompt formats,
the tokenizer (Debian's SentencePiece tools) and the chunker. No torch, so that
`check_chunker.py` runs wherever the C++ tests run.

  question prompt (encoded alone)   QUESTION_PROMPT + eos
  chunk (encoded alone, cached)     CHUNK_PROMPT + eos
  cached mode memory                [question ; chunk_1 ; ... ; chunk_k] encoder outputs, concatenated on time
  fid mode                          each chunk encoded as FID_PROMPT + eos, outputs concatenated
  concat mode                       one encoding of CONCAT_PROMPT (passages joined by CONCAT_PASSAGE) + eos
  answer                            decoder start 0, answer tokens, eos 1
  embedding                         mean over positions of the encoder output of the prompt, L2-normalised
"""
import os
import re
import shutil
import subprocess

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SAMPLE = os.path.join(ROOT, "data", "sample")
PAD, EOS, DECODER_START = 0, 1, 0

QUESTION_PROMPT = "question: {question}"
CHUNK_PROMPT = "title: {title} context: {text}"
FID_PROMPT = "question: {question} title: {title} context: {text}"
CONCAT_PROMPT = "question: {question} context: {passages}"
CONCAT_PASSAGE = "{title}: {text}"          # joined with single spaces
CHUNK_TOKENS = 64                           # max SentencePiece tokens of chunk text per chunk


class SPM:
    """SentencePiece through Debian's spm_encode/spm_decode tools; where they are not installed
    (a GPU machine's image), through the Python binding, which gives the same ids."""

    def __init__(self, model):
        self.model = model
        self.cache = {}
        self.binding = None if shutil.which("spm_encode") else _binding(model)
        if self.binding:
            self.vocab_size = self.binding.get_piece_size()
        else:
            out = subprocess.run(["spm_export_vocab", f"--model={model}"], capture_output=True,
                                 text=True, check=True).stdout
            self.vocab_size = len(out.strip("\n").split("\n"))

    def encode(self, texts):
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            assert all("\n" not in t for t in todo)
            for t, ids in zip(todo, self._encode(todo)):
                self.cache[t] = ids
        return [self.cache[t] for t in texts]

    def _encode(self, texts):
        if self.binding:
            return self.binding.encode(texts)
        res = subprocess.run(["spm_encode", f"--model={self.model}", "--output_format=id"],
                             input="\n".join(texts) + "\n", capture_output=True, text=True, check=True)
        return [[int(x) for x in line.split()] for line in res.stdout.split("\n")[:len(texts)]]

    def decode(self, id_lists):
        kept = [[i for i in ids if i not in (PAD, EOS)] for ids in id_lists]
        if self.binding:
            return [self.binding.decode(ids) for ids in kept]
        lines = [" ".join(str(i) for i in ids) for ids in kept]
        res = subprocess.run(["spm_decode", f"--model={self.model}", "--input_format=id"],
                             input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
        out = res.stdout.split("\n")
        return [out[i] if i < len(out) else "" for i in range(len(lines))]


def _binding(model):
    import sentencepiece
    return sentencepiece.SentencePieceProcessor(model_file=model)


_SPACE = " \t\n\r\f\v"
_CLOSERS = ("\"", "'", ")", "]", "}", "\u201d", "\u2019", "\u00bb")
_SENTENCE_ENDS = (".", "!", "?", "\u2026", "\u3002", "\uff01", "\uff1f")


def _ends_sentence(word):
    stripped = True
    while stripped and word:
        stripped = False
        for closer in _CLOSERS:
            if word.endswith(closer):
                word = word[:-len(closer)]
                stripped = True
                break
    return word.endswith(_SENTENCE_ENDS)


def words_of(text):
    """Runs of non-whitespace, and whether a sentence or paragraph (blank line) ends after each."""
    words, boundary = [], []
    for m in re.finditer(f"([^{_SPACE}]+)([{_SPACE}]*)", text):
        words.append(m.group(1))
        boundary.append(m.group(2).count("\n") >= 2 or _ends_sentence(m.group(1)))
    return words, boundary


def chunk_document(spm, text, max_tokens=CHUNK_TOKENS):
    """The C++ chunker (`data/chunker.cpp`, overlap 0), line for line: greedy packing of words into
    windows of <= max_tokens tokens (each word tokenized alone), ending at the last sentence end in
    the window's last third if there is one; a word longer than a window becomes windows of its own."""
    words, boundary = words_of(text)
    word_ids = spm.encode(words)
    prefix = [0]
    for ids in word_ids:
        prefix.append(prefix[-1] + len(ids))

    def tokens(b, e):
        return prefix[e] - prefix[b]

    chunks, pending, fresh, n = [], "", 0, len(words)
    while fresh < n:
        if tokens(fresh, fresh + 1) > max_tokens:
            for _ in range(0, len(word_ids[fresh]), max_tokens):
                chunks.append(f"{pending} {words[fresh]}" if pending else words[fresh])
                pending = ""
            fresh += 1
            continue
        greedy = fresh
        while greedy < n and tokens(fresh, greedy + 1) <= max_tokens:
            greedy += 1
        end = greedy
        if greedy < n:
            for b in range(greedy, fresh, -1):
                if boundary[b - 1] and 3 * tokens(fresh, b) >= 2 * max_tokens and tokens(fresh, b) > 0:
                    end = b
                    break
        body = " ".join(words[fresh:end])
        if tokens(fresh, end) == 0:     # words without tokens join the chunk next to them
            if end < n:
                pending = body
            elif chunks:
                chunks[-1] += " " + body
        else:
            chunks.append(f"{pending} {body}" if pending else body)
            pending = ""
        fresh = end
    return chunks


