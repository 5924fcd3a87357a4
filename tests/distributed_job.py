"""Run under torchrun by tests/test_distributed.py: prefetch weights through zoo.distributed, report as JSON."""

from __future__ import annotations

import json
import os
import sys
import time

import torch.distributed as dist

import zoo


def main() -> None:
    key, out = sys.argv[1], sys.argv[2]
    dist.init_process_group("gloo")
    started = time.monotonic()
    try:
        zoo.distributed.prefetch(key)
        result = "ok"
    except zoo.ZooError as e:
        result = "error: " + " ".join(str(e).split())
    took = time.monotonic() - started
    report = {"rank": dist.get_rank(), "result": result, "leader": zoo.distributed.cache_leader(), "s": took}
    with open(os.path.join(out, f"rank{dist.get_rank()}.json"), "w") as f:
        json.dump(report, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
