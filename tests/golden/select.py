#!/usr/bin/env python3
"""Pick the golden-test records from the dev corpus (run once; the output is committed).

Usage: python3 tests/golden/select.py ../shared/corpus/dev.jsonl.gz > tests/golden/records.jsonl

Deterministic: records are taken in id order, every k-th per (domain, tool) so every tool
and domain is represented, plus a share of pass-through checks (texts under 200 characters).
The `text` field is dropped: it repeats the tool_response's text field.
"""
import gzip
import json
import sys
from collections import defaultdict

QUOTA = {
    ("bash_output", "Bash"): 60,
    ("file_read", "Bash"): 35,
    ("file_read", "Read"): 20,
    ("error_trace", "Bash"): 50,
    ("search_result", "Bash"): 40,
    ("search_result", "Grep"): 20,
    ("json_tool_result", "Bash"): 1,
    ("json_tool_result", "MCP"): 30,
}
SHORT = 25

def main(path):
    records = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    records.sort(key=lambda r: r["id"])
    groups = defaultdict(list)
    short = []
    for r in records:
        if len(r["text"]) < 200:
            short.append(r)
            continue
        tool = "MCP" if r["tool_name"].startswith("mcp__") else r["tool_name"]
        groups[(r["domain"], tool)].append(r)
    chosen = []
    for key, quota in QUOTA.items():
        group = groups[key]
        step = max(1, len(group) // quota)
        chosen.extend(group[::step][:quota])
    step = max(1, len(short) // SHORT)
    chosen.extend(short[::step][:SHORT])
    chosen.sort(key=lambda r: r["id"])
    for r in chosen:
        r.pop("text", None)
        print(json.dumps(r, ensure_ascii=False))

if __name__ == "__main__":
    main(sys.argv[1])
