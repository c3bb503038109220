"""farcall's SDK runs tasks on the official endpoint; run as a script, so that its
functions are defined in ``__main__`` as users define them (and dill sends them by
value). Usage: ``farcall_sdk.py URL TOKEN ENDPOINT_ID COUNT``; prints one JSON line.
"""

import json
import sys
import time

from farcall import Client


def square(x):
    return x * x


def divide(x):
    return 1 / x


url, token, endpoint_id, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = Client(url, token=token)
square_id = client.register_function(square)
batch = client.create_batch()
for n in range(count):
    batch.add(n, endpoint_id=endpoint_id, function_id=square_id)
batch.add(0, endpoint_id=endpoint_id, function_id=client.register_function(divide))
task_ids = client.batch_run(batch)
entries = {}
deadline = time.monotonic() + 600
while len(entries) < len(task_ids) and time.monotonic() < deadline:
    entries.update(client.wait_any([t for t in task_ids if t not in entries], timeout=10))
failing = entries.get(task_ids[-1])
print(json.dumps({
    "ended": len(entries),
    "wrong": [n for n, t in enumerate(task_ids[:-1])
              if entries.get(t, {}).get("result") != n * n],
    "failure": None if failing is None else str(failing.get("exception")),
}))
