"""A Flask app laid out as modern tools lay it out: modules at the top,
not a package; its dependencies come from a lock file."""
import os

from flask import Flask

from helpers import greeting

app = Flask(__name__)


@app.route("/")
def index():
    return greeting() + "\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "5000")))
