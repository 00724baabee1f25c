def greeting():
    return "locked with poetry"
