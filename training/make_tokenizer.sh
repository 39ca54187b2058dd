#!/bin/sh
# Train the demo tokenizer (models/kvrag-demo/spiece.model). Run from the repository root.
# BPE, not unigram: Debian's spm_train 0.1.97 in unigram mode split even the commonest words of
# this small corpus ("qu es tion", "wh at"); BPE gives whole words and syllable pieces for names.
set -eu
/usr/bin/python3 training/make_spm_input.py > /tmp/spm_input.txt
spm_train --input=/tmp/spm_input.txt --model_prefix=models/kvrag-demo/spiece \
  --model_type=bpe --vocab_size=2000 --character_coverage=1.0 --split_digits=true \
  --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 --num_threads=1
rm -f models/kvrag-demo/spiece.vocab
