"""Runs Microsoft Presidio's analyzer over labelled rows for `npm run eval:peers`.

    python presidio_scan.py --entities EMAIL_ADDRESS,PHONE_NUMBER,... [FILE]
                                              (rows as JSON lines on FILE or stdin; only "text" is read)

Presidio's default AnalyzerEngine wants the spaCy model en_core_web_lg, which spaCy fetches from GitHub, not
PyPI. When that model is installed we use the default engine unchanged; otherwise Presidio's own NoOpNlpEngine
(no model, no NER) with the default recognizer registry, i.e. all its predefined pattern recognizers. Either
way the engine's defaults stand: score threshold 0, LemmaContextAwareEnhancer (which needs lemmas from a model,
so without one it cannot raise scores from context words; at threshold 0 raised scores would hardly change
which spans are returned, only their scores).
Only the requested entity types are analyzed, so its time is spent on the same job as ours.

Output: a first JSON line {"meta": {...}}, then one line per input row, in order:
    {"spans": [{"entity", "start", "end", "score"}], "cpuMicros": int}
start/end are code-point offsets (end exclusive). cpuMicros is the process CPU time of analyze() alone, so
start-up, imports, engine construction and one warm-up call are excluded.
"""
import argparse
import json
import logging
import sys
import time
import warnings
from importlib.metadata import version

import spacy
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import NoOpNlpEngine

SPACY_MODEL = "en_core_web_lg"
WARM_UP = "Warm-up: mail jane.doe@example.com or call 212-555-0100."


def build_engine() -> tuple:
    if spacy.util.is_package(SPACY_MODEL):
        return AnalyzerEngine(), f"default engine with spaCy {SPACY_MODEL} (NER + context words)"
    with warnings.catch_warnings():
        # The warning says context words from the text are unused without a model; the meta note says so.
        warnings.simplefilter("ignore", UserWarning)
        engine = AnalyzerEngine(nlp_engine=NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}]))
    return engine, f"pattern recognizers only: no spaCy model installable offline ({SPACY_MODEL} is not on PyPI)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", required=True, help="comma-separated Presidio entity types to analyze")
    parser.add_argument("file", nargs="?")
    args = parser.parse_args()
    entities = [e for e in args.entities.split(",") if e]
    engine, nlp = build_engine()
    recognizers = sorted(
        {r.name for r in engine.get_recognizers("en") if set(r.supported_entities) & set(entities)}
    )
    meta = {"peer": "presidio", "version": version("presidio-analyzer"), "nlp": nlp, "entities": entities, "recognizers": recognizers}
    print(json.dumps({"meta": meta}), flush=True)
    # One untimed call first (the TypeScript side does the same for ours), so one-time lazy set-up is not billed
    # per MB: compiling patterns, and tldextract (the e-mail TLD check) loading its bundled public suffix list
    # after its network fetch fails here; that expected failure would otherwise print a traceback.
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    engine.analyze(text=WARM_UP, language="en", entities=entities)
    source = open(args.file, encoding="utf-8") if args.file else sys.stdin
    for line in source:
        if not line.strip():
            continue
        text = json.loads(line)["text"]
        t0 = time.process_time_ns()
        results = engine.analyze(text=text, language="en", entities=entities)
        spent = time.process_time_ns() - t0
        spans = [{"entity": r.entity_type, "start": r.start, "end": r.end, "score": round(r.score, 4)} for r in results]
        print(json.dumps({"spans": spans, "cpuMicros": spent // 1000}))


if __name__ == "__main__":
    main()
