def greeting():
    return "locked with uv"
