"""A Flask application whose views use Flask-Caching on manygil.flask_caching.SharedCache: under
manygil serve every worker interpreter builds this module, and all of them share one cache."""

import threading

from flask import Flask, jsonify
from flask_caching import Cache

app = Flask(__name__)
cache = Cache(app, config={"CACHE_TYPE": "manygil.flask_caching.SharedCache", "CACHE_DEFAULT_TIMEOUT": 300,
                           "CACHE_OPTIONS": {"name": "flask-serve-test", "max_bytes": 8 << 20}})
computed = 0


@app.get("/count")
def count():
    return jsonify(hits=cache.cache.inc("hits"), thread=threading.current_thread().name)


@app.get("/report")
@cache.cached(timeout=0)
def report():
    global computed
    computed += 1
    return jsonify(sum=sum(i * i for i in range(100)), computed_here=computed)
