"""WSGI applications the serve tests run in manygil serve's workers (tests/python/test_serve.py)."""
