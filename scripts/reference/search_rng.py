#!/usr/bin/env python3
"""Independent reference for longrope::search_rng and uniform_index (search.hpp).

splitmix64 seeding + xoshiro256** as published by Blackman & Vigna
(https://prng.di.unimi.it/), and the bias-free bounded integer rule
"n = 1: 0 without a draw; else draw x; accept if x >= 2^64 mod n; return x mod n". Prints the golden values
used by tests/test_search_ops.cpp.
"""

MASK = (1 << 64) - 1


def splitmix64_state(seed):
    s = []
    for _ in range(4):
        seed = (seed + 0x9E3779B97F4A7C15) & MASK
        z = seed
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        s.append(z ^ (z >> 31))
    return s


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK


class Xoshiro:
    def __init__(self, seed):
        self.s = splitmix64_state(seed)

    def next(self):
        s = self.s
        r = (rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return r

    def below(self, n):
        if n == 1:  # documented: no draw for a single value
            return 0
        threshold = (1 << 64) % n
        while True:
            x = self.next()
            if x >= threshold:
                return x % n


if __name__ == "__main__":
    for seed in (0, 42):
        g = Xoshiro(seed)
        print(f"seed {seed}: first outputs", ", ".join(f"0x{g.next():016x}ULL" for _ in range(4)))
    g = Xoshiro(7)
    print("seed 7: uniform_index(n) for n = 1..10:", ", ".join(str(g.below(n)) for n in range(1, 11)))
    g = Xoshiro(7)
    print("seed 7: uniform_index(3) x 12:", ", ".join(str(g.below(3)) for _ in range(12)))
