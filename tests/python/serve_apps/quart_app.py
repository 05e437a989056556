"""A Quart application (Flask's API on asyncio)."""

from quart import Quart, jsonify, request

app = Quart(__name__)


@app.route("/")
async def hello():
    return "hello from quart"


@app.route("/json", methods=["POST"])
async def data():
    payload = await request.get_json()
    return jsonify(got=payload, method=request.method)
