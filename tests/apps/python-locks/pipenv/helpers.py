def greeting():
    return "locked with pipenv"
