"""What the SharedDict tests run in workers (importable there: pools propagate sys.path)."""

import manygil


def increment(name, keys, rounds):
    d = manygil.SharedDict.named(name)
    for _ in range(rounds):
        for key in keys:
            d.incr(key, 1, initial=0)
    return rounds * len(keys)


def append_by_compare_and_set(name, key, tag, rounds):
    """Appends tag to the tuple under key, rounds times, with a read-modify-write loop."""
    d = manygil.SharedDict.named(name)
    retries = 0
    for i in range(rounds):
        while True:
            current = d.get(key)
            if d.compare_and_set(key, current, current + ((tag, i),)):
                break
            retries += 1
    return retries


def read_while_written(name, keys, until_key):
    """Reads keys until until_key appears; every value must be the one written for its key."""
    d = manygil.SharedDict.named(name)
    reads = wrong = 0
    while until_key not in d:
        for key in keys:
            value = d.get(key)
            reads += 1
            if value != {"key": key, "square": key * key}:
                wrong += 1
    return reads, wrong


def fill(name, prefix, n, size):
    d = manygil.SharedDict.named(name)
    for i in range(n):
        d[(prefix, i)] = b"x" * size
    return d.stats()["bytes"]


def write_into_buffer(name, key, text):
    buf = manygil.SharedDict.named(name)[key]
    memoryview(buf)[: len(text)] = text
    return len(text)


def get(name, key):
    return manygil.SharedDict.named(name).get(key)


def incr_given(d, key, delta):
    return d.incr(key, delta, initial=0)


def identity(x):
    return x
