"""Password hashing cost: wall time and memory of one argon2id hash per parameter set.

Each parameter set runs in a fresh interpreter, so its peak memory (VmHWM) is its own:
``peak MiB`` is VmHWM minus the resident size just before the first hash. The second table runs
200 verifications, at most two at once (as the web UI's gate allows), once in 40 worker threads
(the size of the web server's general thread pool) and once in 2 dedicated threads, and prints
what stays resident afterwards: glibc keeps freed blocks under its mmap threshold (32 MiB at
most) in each thread's arena, so small hashes spread over many threads pile up.

    .venv/bin/python bench/password_hashing.py                 # every parameter set, 5 hashes each
    .venv/bin/python bench/password_hashing.py --rounds 10 --sets 1:47104:1 2:19456:1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

# (time_cost, memory_cost KiB, parallelism): argon2-cffi's default (RFC 9106's second
# recommendation) and OWASP's equivalent-strength sets for a single lane.
DEFAULT_SETS = ["3:65536:4", "1:47104:1", "2:19456:1", "3:12288:1", "4:9216:1", "5:7168:1"]
_PASSWORD = "a village passphrase 2024"


@dataclass(frozen=True)
class Parameters:
    time_cost: int
    memory_kib: int
    parallelism: int

    @classmethod
    def parse(cls, text: str) -> Parameters:
        t, m, p = (int(part) for part in text.split(":"))
        return cls(t, m, p)

    def __str__(self) -> str:
        return f"t={self.time_cost} m={self.memory_kib // 1024} MiB p={self.parallelism}"

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.time_cost, memory_cost=self.memory_kib, parallelism=self.parallelism
        )


def _status_kib(field: str) -> int:
    with Path("/proc/self/status").open(encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def _measure_one(parameters: Parameters, rounds: int) -> dict[str, float]:
    hasher = parameters.hasher()
    before = _status_kib("VmRSS")
    times: list[float] = []
    stored = ""
    cpu_start = time.process_time()
    for _ in range(rounds):
        start = time.perf_counter()
        stored = hasher.hash(_PASSWORD)
        times.append(time.perf_counter() - start)
    cpu_per_hash = (time.process_time() - cpu_start) / rounds
    verify_times: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        hasher.verify(stored, _PASSWORD)
        verify_times.append(time.perf_counter() - start)
    return {
        "hash_ms": 1000 * statistics.median(times),
        "verify_ms": 1000 * statistics.median(verify_times),
        "peak_mib": (_status_kib("VmHWM") - before) / 1024,
        "cpu_ms": 1000 * cpu_per_hash,
    }


def _measure_pool(parameters: Parameters, threads: int, verifications: int) -> dict[str, float]:
    hasher = parameters.hasher()
    stored = hasher.hash(_PASSWORD)
    before = _status_kib("VmRSS")
    gate = threading.BoundedSemaphore(2)

    def wrong(_: int) -> None:
        with gate, contextlib.suppress(VerifyMismatchError):
            hasher.verify(stored, "not the passphrase")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(wrong, range(verifications)))
        # Still alive: what a long-running server keeps once the burst is over.
        retained = (_status_kib("VmRSS") - before) / 1024
    return {"retained_mib": retained, "peak_mib": (_status_kib("VmHWM") - before) / 1024}


def _child(args: list[str]) -> dict[str, float]:
    command = [sys.executable, __file__, *args]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="hashes (and verifies) per set")
    parser.add_argument("--sets", nargs="+", default=DEFAULT_SETS, help="t:m_kib:p ...")
    parser.add_argument("--pool-set", default="2:19456:1", help="t:m_kib:p for the pool table")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--pool", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one and args.pool:
        print(json.dumps(_measure_pool(Parameters.parse(args.one), args.pool, 200)))
        return 0
    if args.one:
        print(json.dumps(_measure_one(Parameters.parse(args.one), args.rounds)))
        return 0

    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"median of {args.rounds} per set; each set in a fresh process")
    print()
    print("| parameters | hash ms | verify ms | CPU ms / hash | peak MiB |")
    print("|---|---:|---:|---:|---:|")
    for text in args.sets:
        parameters = Parameters.parse(text)
        figures = _child(["--one", text, "--rounds", str(args.rounds)])
        print(
            f"| {parameters} | {figures['hash_ms']:.0f} | {figures['verify_ms']:.0f} |"
            f" {figures['cpu_ms']:.0f} | {figures['peak_mib']:.1f} |"
        )
    pool_parameters = Parameters.parse(args.pool_set)
    print()
    print(f"200 wrong-password verifications with {pool_parameters}, at most 2 at once:")
    print()
    print("| threads | peak MiB | still resident MiB |")
    print("|---:|---:|---:|")
    for threads in (40, 2):
        figures = _child(["--one", args.pool_set, "--pool", str(threads)])
        print(f"| {threads} | {figures['peak_mib']:.1f} | {figures['retained_mib']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
