// node-hello: an Express app for berth's Node.js buildpack.
const express = require("express");
const app = express();
app.get("/", (req, res) => res.send("Hello from Node.js\n"));
app.listen(process.env.PORT || 5000, "0.0.0.0");
