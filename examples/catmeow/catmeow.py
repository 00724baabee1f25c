"""catmeow: the smallest Flask app berth deploys in its walk-through."""
import os

from flask import Flask

app = Flask(__name__)


@app.route("/")
def meow():
    return os.environ.get("MESSAGE", "Cat dreams meow..") + "\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "5000")))
