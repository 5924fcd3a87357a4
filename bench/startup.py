"""Start-up time of `zoo` commands against `python -c "import torch"`, measured side by side.

Each round runs every command once in a fresh process, in an order that rotates from round to round, and
the medians are printed with their ratio to `import torch`. The goal (issue 10): `zoo --help`,
`zoo <cmd> --help`, `zoo cache dir|ls` and `zoo trust --list` import neither torch nor torchvision (under
0.5 s here), and `zoo list` needs no more than `import torch`.

    python bench/startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    'python -c "import torch"': ["-c", "import torch"],
    'python -c "import torchvision"': ["-c", "import torchvision"],
    "zoo --help": ["-m", "zoo", "--help"],
    "zoo classify --help": ["-m", "zoo", "classify", "--help"],
    "zoo cache dir": ["-m", "zoo", "cache", "dir"],
    "zoo cache ls": ["-m", "zoo", "cache", "ls"],
    "zoo trust --list": ["-m", "zoo", "trust", "--list"],
    "zoo list": ["-m", "zoo", "list"],
}
ANCHOR = 'python -c "import torch"'


def run_once(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "ZOO_HOME": home}
        names = list(COMMANDS)
        for name in names:  # warm the OS file cache: every round then measures the same thing
            run_once(COMMANDS[name], env)
        times: dict[str, list[float]] = {name: [] for name in names}
        for r in range(opts.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                times[name].append(run_once(COMMANDS[name], env))
    anchor = statistics.median(times[ANCHOR])
    print(f"{'command':<32} {'median':>9} {'min':>9}  vs import torch   ({opts.rounds} rounds)")
    for name in names:
        med = statistics.median(times[name])
        print(f"{name:<32} {med * 1000:7.0f} ms {min(times[name]) * 1000:7.0f} ms  {med / anchor:6.2f}x")


if __name__ == "__main__":
    main()
