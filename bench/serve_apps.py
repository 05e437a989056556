"""The WSGI applications bench/serve.py serves with each server: the same module for all of them."""

import json

from flask import Flask, render_template

ROWS = [{"id": i, "name": f"item number {i}", "price": i * 1.25} for i in range(20)]


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, World!"]


def json_app(environ, start_response):
    body = json.dumps({"message": "Hello, World!", "rows": ROWS}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


flask_app = Flask(__name__)


@flask_app.route("/")
def page():
    return render_template("page.html", title="manygil", rows=ROWS)  # bench/templates/page.html
