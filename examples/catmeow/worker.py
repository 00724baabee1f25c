"""catmeow's background process: a heartbeat in the logs every few seconds."""
import time

while True:
    print("catmeow worker: purr", flush=True)
    time.sleep(5)
