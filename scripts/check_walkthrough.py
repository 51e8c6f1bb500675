#!/usr/bin/env python3
"""Runs the README's grpcurl walkthrough and CLI examples verbatim against
a fresh server.

Every ```sh block of the "grpcurl walkthrough" and "The riverlog CLI"
sections is run with bash, in order, with only the server address replaced
(the server listens on a free port; the CLI finds it in RIVERLOG_SERVER and
the freshly built `riverlog` first on PATH). Each block must match one of
the expectations below, so a changed walkthrough cannot silently go
unchecked.
"""
import os
import re
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README_ADDR = "127.0.0.1:50051"
README_HTTP_ADDR = "127.0.0.1:8080"

# (substring identifying the block, exit status ok? (None: runs until stopped),
#  substrings the output must hold, substrings it must not hold)
SECTIONS = ["## grpcurl walkthrough", "## The riverlog CLI", "## HTTP"]

EXPECTATIONS = [
    # Dead-lettered at the nack (one delivery allowed), then given back with
    # a fresh count.
    ("ConsumerGroups/Redrive", True,
     ['"rlreason"', '"max_deliveries"', '"rlorigid"', '"redriven": "1"', '"deliveryCount": 1'],
     ['"originGone"']),
    # A work queue forgets the job's event at the trim, not its id.
    ("RETENTION_POLICY_WORK_QUEUE", True,
     ['"policy": "RETENTION_POLICY_WORK_QUEUE"', '"dedupWindow": "86400s"', '"removed": "1"',
      '"duplicate": true', '"policy":"interest"', '"dedup_window_seconds":3600.0'], []),
    # A JSON string stays a string in both modes; the header percent-decodes.
    ("accept: application/cloudevents-batch+json", True,
     ['"id":"note-1"', '"id":"note-2"', '"data":"123"', '"subject":"caf\u00e9 au lait"',
      '"rlsequence":2'], ['"data":123', '"events"']),
    ("note-1", True, ['"id":"note-1"', '"sequence":1', '"id":"note-2"', '"sequence":2'],
     ['"status"']),
    ("cloudevents-batch+json", True,
     ['"id":"order-3"', '"sequence":3', '"id":"order-4"', '"id":"order-5"', '"sequence":5',
      '"id":"order-6"', '"sequence":6'], ['"duplicate":true']),
    ("/events?limit", True,
     ['"rlsequence":6', '"data_base64"', '"end_of_stream":true', '"data":{"total":12}'], []),
    ("curl -sN", None, ["id: 1", "event: com.example.order.created", '"rlstream":"orders:eu"'], []),
    ("api/v1/streams/nope", True, ['"status":404', '"reason":"STREAM_NOT_FOUND"'], []),
    # Stdin without --data: two events and the summary on stderr.
    ("riverlog publish jobs", True,
     ["jobs#1 @", "jobs#2 @", "jobs#3 @", "published 2 events ("], ["duplicate"]),
    ("riverlog tail", True,
     ['jobs#1 @', 'com.example.job.queued', '{"job":1}', '"rlsequence":2', '"data":{"job":2}'],
     ['"rlsequence":3']),
    # Tables: `streams`, the description of a stream and of a group, `groups STREAM`.
    ("riverlog streams info jobs", True,
     ["STREAM   EVENTS   FIRST   LAST   GROUPS   LAST APPEND\njobs     3        1       3      0",
      "\nevents           3\n", "created jobs/workers (dead letters to jobs:dlq)",
      "STREAM   GROUP     PENDING   LAG   DELIVERED   CONSUMERS   DEAD LETTERS\n"
      "jobs     workers   0         3     0           0           jobs:dlq\n",
      "\nlag              3\n",
      "jobs/workers goes on after sequence 3 (0 pending entries removed, lag 0)",
      "redrove 0 dead letters to jobs/workers",
      '"removed":1'], []),
    ("riverlog completion", True, ["riverlog 0.1.0 (commit ", ".TH riverlog 1"], ["unknown"]),
    ("ConsumerGroups/CreateGroup", True,
     ['"group": "billing"', '"lastDeliveredSequence": "2"', '"ackFloor": "2"',
      '"deliveryCount": 1', '"order-2"', '"count": "2"', '"acked": "2"'], ["notPending"]),
    # Back to before the first event (lag 2, nothing pending to remove),
    # then past the last.
    ("ConsumerGroups/SeekGroup", True,
     ['"lag": "2"', '"lastDeliveredSequence": "2"', '"ackFloor": "2"'], ['"pendingRemoved"']),
    ("Checkpoints/CommitCheckpoint", None, ['"sequence": "2"', '"caughtUp"'], ['"order-']),
    ("EventLog/Subscribe", None, ['"caughtUp"', '"order-1"', '"order-2"'], []),
    ("EventLog/Publish", True, ['"sequence": "2"', '"position"'], []),
    ("EventLog/Read", True, ['"order-1"', '"order-2"', '"endOfStream": true'], []),
    ("EventLog/GetStream", False, ["NotFound", "STREAM_NOT_FOUND"], []),
    ("Health/Check", True, ['"SERVING"'], []),
    (" list", True, ["riverlog.v1.EventLog", "grpc.health.v1.Health", "rpc Publish"], []),
]


def walkthrough_blocks():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    blocks = []
    for heading in SECTIONS:
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        blocks += re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return blocks


def start_server(data_dir):
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    subprocess.run(["cargo", "build", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(target, "debug", "riverlog")
    server = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
         "--database-url", f"sqlite://{data_dir}/riverlog.db"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "RUST_LOG": "info", "RIVERLOG_LOG_FORMAT": "text"},
    )
    for line in server.stderr:
        match = re.search(r"grpc=(\S+) http=(\S+)", line)
        if match:
            # Keep draining the log so the server never blocks on the pipe.
            threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
            return server, match.group(1), match.group(2)
    raise SystemExit("walkthrough: the server exited before serving")


def main():
    blocks = walkthrough_blocks()
    if not blocks:
        raise SystemExit("walkthrough: no ```sh blocks found in the README section")
    failures = []
    with tempfile.TemporaryDirectory() as data_dir:
        server, addr, http_addr = start_server(data_dir)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        env = {**os.environ, "RIVERLOG_SERVER": f"http://{addr}",
               "PATH": os.path.join(target, "debug") + os.pathsep + os.environ["PATH"]}
        env.pop("RIVERLOG_TOKEN", None)
        try:
            for block in blocks:
                rule = next((r for r in EXPECTATIONS if r[0] in block), None)
                if rule is None:
                    failures.append(f"no expectation covers this block:\n{block}")
                    continue
                key, ok_expected, needles, forbidden = rule
                script = block.replace(README_ADDR, addr).replace(README_HTTP_ADDR, http_addr)
                try:
                    # Subscribe runs until interrupted; give it a moment.
                    run = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                                         timeout=3 if ok_expected is None else 60, env=env)
                    output, status_ok = run.stdout + run.stderr, run.returncode == 0
                except subprocess.TimeoutExpired as e:
                    output = (e.stdout or b"").decode() + (e.stderr or b"").decode()
                    status_ok = None
                missing = [n for n in needles if n not in output]
                present = [f for f in forbidden if f in output]
                if (ok_expected is not None and status_ok != ok_expected) or missing or present:
                    failures.append(f"block for {key!r}: exit ok={status_ok}, missing {missing}, "
                                    f"unexpected {present}\n"
                                    f"--- command\n{script}\n--- output\n{output}")
                else:
                    print(f"walkthrough ok: {key.strip()}")
        finally:
            server.terminate()
            server.wait(timeout=30)
    if failures:
        print("\n\n".join(failures), file=sys.stderr)
        raise SystemExit(f"walkthrough: {len(failures)} block(s) failed")
    print(f"walkthrough: all {len(blocks)} blocks behave as the README says")


if __name__ == "__main__":
    main()
