#!/usr/bin/env python3
"""Table benchmark scorer: how much of the papers' tables two tools recover.

Tools, side by side in one run:
  evistream   the `"tables"` key of the `<stem>.json` files that
              `evistream convert --out DIR` wrote into EVISTREAM_JSON_DIR;
  pdfplumber  (the baseline) `page.extract_tables()` with default settings on
              every page of CORPUS_DIR/pdf/<stem>.pdf, run here and timed;
  plumber-text  the same with its text strategy for both directions
              (`{"vertical_strategy": "text", "horizontal_strategy": "text"}`),
              which does not need ruling lines: a second, stronger baseline
              for tables drawn without rules.

Reference: every <table> inside a <table-wrap> of CORPUS_DIR/nxml/<stem>.nxml
(JATS XML). A cell is a <th>/<td> of a <tr>; its text is the whole itertext
(inline markup such as <italic>, <sup>, <xref>, <bold> kept as text, <break/>
and <hr/> add nothing). colspan/rowspan are ignored: a spanning cell counts
once, in the row where it is written.

Normalisation (the same for the XML and both tools), in this order:
  1. Unicode NFKC;
  2. lowercase;
  3. the dash-like characters U+2010 U+2011 U+2012 U+2013 U+2014 U+2015
     U+2212 (‐ ‑ ‒ – — ― −) become '-';
  4. all whitespace is removed (so line breaks inside a cell do not matter);
  5. the footnote marker characters * † ‡ § ¶ are removed.
  Nothing else: a footnote letter written as a superscript (0.03<sup>a</sup>)
  stays, as "0.03a". A cell that is empty after this is ignored.

Metrics, per paper and overall (micro-average: counts pooled over papers):
  cell recall  of the non-empty XML cells of all the paper's tables, the share
               found as a cell of some table the tool extracted from the
               paper's PDF, matched by normalised text as a multiset (each
               extracted cell can satisfy one XML cell);
  row share    of the XML rows with at least 2 non-empty cells ("rows
               considered"), the share for which some single extracted row
               holds every one of those cells (a multiset within the row).
Also the number of tables in the XML and extracted by each tool, and the
pdfplumber time (and the evistream time when --evistream-seconds is given).
The last lines are the ratios evistream / pdfplumber and evistream /
plumber-text of the two metrics.

A paper whose JSON is missing or unreadable counts as no tables found.

Usage: python3 tests/bench/tables.py CORPUS_DIR EVISTREAM_JSON_DIR
           [--evistream-seconds S]
Needs the standard library and pdfplumber (tests/bench/tables.sh installs it
in a venv and runs the converter first).
"""

import argparse
import json
import logging
import sys
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
MARKERS = "*\u2020\u2021\u00a7\u00b6"  # * † ‡ § ¶
_TRANSLATE = {ord(c): "-" for c in DASHES}
_TRANSLATE.update({ord(c): None for c in MARKERS})


def norm(text):
    """The cell text as compared; '' for an empty cell (or None)."""
    if not text:
        return ""
    s = unicodedata.normalize("NFKC", text).lower()
    s = "".join(s.split())
    return s.translate(_TRANSLATE)


def local(tag):
    """The element name without a namespace ('{ns}td' -> 'td')."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def xml_tables(path):
    """The paper's tables as lists of rows, a row being its cells' raw texts."""
    root = ET.parse(path).getroot()
    tables = []
    for wrap in root.iter():
        if local(wrap.tag) != "table-wrap":
            continue
        for table in wrap.iter():
            if local(table.tag) != "table":
                continue
            rows = []
            for tr in table.iter():
                if local(tr.tag) != "tr":
                    continue
                rows.append(
                    ["".join(c.itertext()) for c in tr if local(c.tag) in ("th", "td")]
                )
            tables.append(rows)
    return tables


def evistream_tables(path):
    """The tables of one `evistream convert` JSON; None if the file is missing
    or unreadable, [] if it has no "tables" key."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        print(f"{path}: unreadable: {e}", file=sys.stderr)
        return None
    def items(obj, key):  # obj[key] as a list, tolerating nulls and odd shapes
        v = obj.get(key) if isinstance(obj, dict) else None
        return v if isinstance(v, list) else []

    tables = []
    for table in items(doc, "tables"):
        rows = []
        for row in items(table, "rows"):
            texts = []
            for cell in items(row, "cells"):
                text = cell.get("text") if isinstance(cell, dict) else None
                texts.append(text if isinstance(text, str) else "")
            rows.append(texts)
        tables.append(rows)
    return tables


TEXT_STRATEGY = {"vertical_strategy": "text", "horizontal_strategy": "text"}


def pdfplumber_tables(pdf_path, settings=None):
    """Every table pdfplumber finds with `settings` (None: its defaults), on every page."""
    import pdfplumber

    tables = []
    with pdfplumber.open(pdf_path) as pdf:
        for page in pdf.pages:
            for table in page.extract_tables(settings) or []:
                tables.append([[c or "" for c in (row or [])] for row in table or []])
            page.close()  # drop the page's cached objects
    return tables


class Score:
    def __init__(self):
        self.cells = 0
        self.cells_found = 0
        self.rows = 0
        self.rows_found = 0
        self.tables = 0

    def add(self, other):
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def recall(self):
        return self.cells_found / self.cells if self.cells else None

    def row_share(self):
        return self.rows_found / self.rows if self.rows else None


def score(reference, extracted):
    """reference: the XML tables; extracted: the tool's tables, or None when
    it produced nothing readable for the paper."""
    s = Score()
    extracted = extracted or []
    s.tables = len(extracted)
    ref_cells = Counter()
    ref_rows = []
    for table in reference:
        for row in table:
            cells = Counter(n for n in map(norm, row) if n)
            ref_cells.update(cells)
            if sum(cells.values()) >= 2:
                ref_rows.append(cells)
    got_cells = Counter()
    got_rows = []
    for table in extracted:
        for row in table:
            cells = Counter(n for n in map(norm, row) if n)
            got_cells.update(cells)
            if cells:
                got_rows.append(cells)
    s.cells = sum(ref_cells.values())
    s.cells_found = sum(min(n, got_cells[c]) for c, n in ref_cells.items())
    s.rows = len(ref_rows)
    s.rows_found = sum(
        1
        for want in ref_rows
        if any(all(got[c] >= n for c, n in want.items()) for got in got_rows)
    )
    return s


def fmt(x, width=6):
    return f"{x:{width}.3f}" if x is not None else f"{'-':>{width}}"


def ratio(a, b):
    """'a / b = r x' for the last lines."""
    if a is None or b is None:
        return "n/a"
    r = "n/a" if a == 0 == b else "inf" if b == 0 else f"{a / b:.2f}x"
    return f"{a:.3f} / {b:.3f} = {r}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", type=Path, help="folder with pdf/ and nxml/")
    ap.add_argument("json_dir", type=Path, help="`evistream convert --out` folder")
    ap.add_argument("--evistream-seconds", type=float, default=None,
                    help="the converter's wall time, to print beside pdfplumber's")
    args = ap.parse_args()

    pdfs = sorted((args.corpus / "pdf").glob("*.pdf"))
    if not pdfs:
        print(f"no PDFs in {args.corpus / 'pdf'}", file=sys.stderr)
        return 2
    try:
        import pdfplumber
    except ImportError:
        print("pdfplumber is not installed (pip install pdfplumber)", file=sys.stderr)
        return 2
    # pdfminer logs a warning per odd operator (e.g. a 2-component colour): noise here.
    logging.getLogger("pdfminer").setLevel(logging.ERROR)
    print(f"pdfplumber {pdfplumber.__version__}; corpus {args.corpus}; "
          f"evistream JSON {args.json_dir}")
    print()
    tools = ("evistream", "pdfplumber", "plumber-text")
    print(f"{'paper':<12} {'xml':>6} {'cells':>5} {'rows':>4}", end="")
    for name in tools:
        print(f" | {name:>10} {'recall':>6} {'rows':>6}", end="")
    print(f" | {'pdfplumber':>10}")
    print(f"{'':<12} {'tables':>6} {'':>5} {'':>4}", end="")
    for _ in tools:
        print(f" | {'tables':>10} {'':>6} {'':>6}", end="")
    print(f" | {'time':>10}")

    totals = {name: Score() for name in tools}
    xml_total = 0
    plumber_time = 0.0
    text_time = 0.0
    missing = []
    for pdf in pdfs:
        stem = pdf.stem
        nxml = args.corpus / "nxml" / f"{stem}.nxml"
        try:
            reference = xml_tables(nxml)
        except (OSError, ET.ParseError) as e:
            print(f"{stem:<12} reference unreadable, skipped: {e}")
            continue
        notes = []
        ours = evistream_tables(args.json_dir / f"{stem}.json")
        if ours is None:
            missing.append(stem)
            notes.append("evistream JSON missing")
        t0 = time.perf_counter()
        try:
            theirs = pdfplumber_tables(pdf)
        except Exception as e:  # a PDF pdfplumber cannot read counts as nothing found
            theirs = None
            notes.append(f"pdfplumber failed: {type(e).__name__}: {e}")
        dt = time.perf_counter() - t0
        plumber_time += dt
        t1 = time.perf_counter()
        try:
            text_strategy = pdfplumber_tables(pdf, TEXT_STRATEGY)
        except Exception as e:
            text_strategy = None
            notes.append(f"pdfplumber (text) failed: {type(e).__name__}: {e}")
        text_time += time.perf_counter() - t1

        xml_total += len(reference)
        scores = {
            "evistream": score(reference, ours),
            "pdfplumber": score(reference, theirs),
            "plumber-text": score(reference, text_strategy),
        }
        ref = scores["pdfplumber"]
        print(f"{stem:<12} {len(reference):>6} {ref.cells:>5} {ref.rows:>4}", end="")
        for name in tools:
            s = scores[name]
            totals[name].add(s)
            shown = "-" if name == "evistream" and ours is None else s.tables
            print(f" | {shown:>10} {fmt(s.recall())} {fmt(s.row_share())}", end="")
        print(f" | {dt:>9.2f}s", end="")
        print(("  " + "; ".join(notes)) if notes else "")

    print()
    ref = totals["pdfplumber"]
    print(f"XML: {xml_total} tables, {ref.cells} non-empty cells, "
          f"{ref.rows} rows with 2+ non-empty cells")
    times = {"evistream": args.evistream_seconds, "pdfplumber": plumber_time,
             "plumber-text": text_time}
    for name in tools:
        s = totals[name]
        t = f", time {times[name]:.2f} s" if times[name] is not None else ""
        print(f"{name:<10} cell recall {s.cells_found}/{s.cells} = {fmt(s.recall(), 5)}, "
              f"row share {s.rows_found}/{s.rows} = {fmt(s.row_share(), 5)}, "
              f"{s.tables} tables{t}")
    if missing:
        print(f"(evistream JSON missing for {len(missing)} paper(s), counted as nothing found: "
              f"{' '.join(missing)})")
    ours, theirs = totals["evistream"], totals["pdfplumber"]
    if times["evistream"] is not None:
        print(f"time evistream / pdfplumber: {ratio(times['evistream'], plumber_time)}")
    print(f"cell recall evistream / pdfplumber: {ratio(ours.recall(), theirs.recall())}")
    print(f"row share evistream / pdfplumber: {ratio(ours.row_share(), theirs.row_share())}")
    text = totals["plumber-text"]
    print(f"cell recall evistream / plumber-text: {ratio(ours.recall(), text.recall())}")
    print(f"row share evistream / plumber-text: {ratio(ours.row_share(), text.row_share())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
