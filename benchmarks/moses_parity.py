"""Check that the prepare stage's Moses tokens are tokenizer.perl's, line for line.

    .venv/bin/python benchmarks/moses_parity.py --moses /path/to/mosesdecoder --lang de FILE [FILE ...]

The prepare stage filters IWSLT'14 training pairs on the token counts fairseq's clean-corpus-n.perl
sees after tokenizer.perl (seq2seq.data.cleaning.moses_words, built on sacremoses). This script runs the
real tokenizer.perl of a mosesdecoder checkout (`-l LANG -threads 1`, escaping on, as fairseq runs
it apart from threads) on each FILE and reports the lines whose tokens differ.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--moses", type=Path, required=True, help="a mosesdecoder checkout (scripts/tokenizer/...)")
    parser.add_argument("--lang", required=True)
    args = parser.parse_args(argv)

    from seq2seq.data.cleaning import moses_words
    from seq2seq.io import read_lines

    perl = args.moses / "scripts" / "tokenizer" / "tokenizer.perl"
    bad = 0
    for path in args.files:
        lines = read_lines(path)
        out = subprocess.run(["perl", str(perl), "-q", "-l", args.lang, "-threads", "1"], input="".join(l + "\n" for l in lines),
                             capture_output=True, text=True, check=True).stdout.split("\n")[: len(lines)]
        ours = moses_words(lines, args.lang, path.name)
        diff = [(n, line, ref, " ".join(o)) for n, (line, ref, o) in enumerate(zip(lines, out, ours), 1) if ref.split() != o]
        print(f"{path}: {len(lines):,} lines, {len(diff)} with other tokens than tokenizer.perl")
        for n, line, ref, got in diff[:10]:
            print(f"  line {n}: {line!r}\n    perl: {ref}\n    ours: {got}")
        bad += len(diff)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
