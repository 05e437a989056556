"""Workloads shared by the benchmarks and the demo. A module, so every model (threads, processes,
interpreters) can import the functions by reference."""


def noop(x):
    return x


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def cpu_task(n):
    """A pure-Python CPU-bound task: naive fib."""
    return fib(n)
