"""Workloads shared by the benchmarks and the demo. A module, so every model (threads, processes,
interpreters) can import the functions by reference."""


def noop(x):
    return x


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def cpu_task(n):
    """A pure-Python CPU-bound task: naive fib."""
    return fib(n)


def ping(out, back, n):
    """One side of a ping-pong: send, then wait for the reply (channels or queue.Queue alike)."""
    send = out.send if hasattr(out, "send") else out.put
    recv = back.recv if hasattr(back, "recv") else back.get
    for i in range(n):
        send(i)
        recv()
    return n


def pong(inbox, reply, n):
    recv = inbox.recv if hasattr(inbox, "recv") else inbox.get
    send = reply.send if hasattr(reply, "send") else reply.put
    for _ in range(n):
        send(recv())
    return n
