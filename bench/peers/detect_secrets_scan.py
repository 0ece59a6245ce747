"""Runs Yelp's detect-secrets over labelled rows for `npm run eval:peers`.

    python detect_secrets_scan.py [FILE]      (rows as JSON lines on FILE or stdin; only "text" is read)

Each row's text is written to its own temporary file and scanned with `scan_file`, the function
`detect-secrets scan FILE` runs per file, under the settings its command line sets up: every default plugin
and every default filter. `--no-verify` is the one deviation: verification calls each vendor's API over the
network, which is not pattern detection (our detector does none either) and has no network here.

Output: a first JSON line {"meta": {...}}, then one line per input row, in order:
    {"found": bool, "types": [detect-secrets secret types], "cpuMicros": int}
cpuMicros is the process CPU time of the scan_file call alone (the temporary file is written before the
clock starts), so start-up, imports, plugin loading and one warm-up scan are excluded.
"""
import json
import os
import sys
import tempfile
import time

from detect_secrets.__version__ import VERSION
from detect_secrets.core.scan import scan_file
from detect_secrets.core.usage import ParserBuilder
from detect_secrets.settings import get_settings

WARM_UP = 'password = "warm-up-Xq7vR2mK9pL4sT8w"\n'


def scan_text(tmp: str, name: str, text: str) -> tuple:
    """Findings for `text` scanned as a file, and the CPU nanoseconds of the scan alone."""
    # No extension: detect-secrets treats the file as plain text (its generic keyword patterns).
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    t0 = time.process_time_ns()
    secrets = list(scan_file(path))
    spent = time.process_time_ns() - t0
    os.unlink(path)
    return secrets, spent


def main() -> None:
    source = open(sys.argv[1], encoding="utf-8") if len(sys.argv) > 1 else sys.stdin
    with tempfile.TemporaryDirectory(prefix="eval-peers-ds-") as tmp:
        # The CLI's own argument parsing configures the global plugin and filter settings, exactly as
        # `detect-secrets scan --no-verify` would.
        ParserBuilder().add_console_use_arguments().parse_args(["scan", "--no-verify", tmp])
        settings = get_settings()
        meta = {
            "peer": "detect-secrets",
            "version": VERSION,
            "mode": "scan_file per row (one temporary file per row, no extension), as `detect-secrets scan --no-verify`",
            "plugins": sorted(settings.plugins.keys()),
            "filters": sorted(settings.filters.keys()),
        }
        print(json.dumps({"meta": meta}), flush=True)
        # One untimed scan first (the TypeScript side does the same for ours), so one-time lazy set-up
        # (plugin instantiation, pattern compilation) is not billed per MB.
        scan_text(tmp, "warm-up", WARM_UP)
        for n, line in enumerate(source):
            if not line.strip():
                continue
            secrets, spent = scan_text(tmp, f"row{n}", json.loads(line)["text"])
            types = sorted({s.type for s in secrets})
            print(json.dumps({"found": bool(secrets), "types": types, "cpuMicros": spent // 1000}))


if __name__ == "__main__":
    main()
