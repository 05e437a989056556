"""A Flask application with a Jinja template (templates/page.html)."""

from flask import Flask, jsonify, render_template, request

app = Flask(__name__)


@app.route("/")
def page():
    return render_template("page.html", title="manygil", items=["one", "two", "three"])


@app.route("/json", methods=["GET", "POST"])
def data():
    return jsonify(method=request.method, args=request.args, form=request.form)
