"""notes: a Flask app that keeps its notes in the PostgreSQL database
DATABASE_URL names, as Heroku's getting-started apps do. GET / lists the
notes; POST / with a form field `note` adds one."""
import os
from urllib.parse import unquote, urlparse

import pg8000.native
from flask import Flask, request

app = Flask(__name__)


def connect():
    url = urlparse(os.environ["DATABASE_URL"])
    return pg8000.native.Connection(
        user=unquote(url.username or ""),
        password=unquote(url.password or ""),
        host=url.hostname,
        port=url.port or 5432,
        database=url.path.lstrip("/"),
        timeout=5,
    )


@app.route("/", methods=["GET", "POST"])
def notes():
    db = connect()
    try:
        db.run("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL)")
        if request.method == "POST":
            db.run("INSERT INTO notes (body) VALUES (:body)", body=request.form["note"])
        rows = db.run("SELECT body FROM notes ORDER BY id")
    finally:
        db.close()
    return "".join(f"{body}\n" for (body,) in rows)


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "5000")))
