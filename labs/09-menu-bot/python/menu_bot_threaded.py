#!/usr/bin/env python3
"""The seed's threaded "10086" menu bot, a thread per caller, in Python 3 (lab 09).

The seed's select+thread example (what socketserver's ThreadingTCPServer
does underneath): its process() runs in a threading.Thread for each caller,
so two callers are served at once. process() is imported from
menu_bot_server.py, with that file's fixes (see its docstring).

Changes from the seed: the seed's select() with a 1-second timeout, which
only prints `looping` every second, is left out (select is the next lab's
subject): the loop blocks in accept(). Its `print request,client_address`
is the `connection from HOST:PORT` line. The threads are daemon threads
(the seed: daemon = False), so that SIGINT/SIGTERM end the server with exit
0 even while callers are connected, as the C++ server does. Plus the flags,
the listening line and the summary line.
"""
import pathlib
import sys
import threading

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import stop_on_signals  # noqa: E402
from menu_bot_server import listen, process, server_args, show  # noqa: E402


def main():
    args = server_args("Lab 09: the 10086 menu bot, a thread per caller.")
    stop_on_signals()
    served = 0
    try:  # from the listening line on, a stop signal ends the loop, never a traceback
        sk = listen(args)
        while True:
            request, client_address = sk.accept()
            served += 1
            print(f"connection from {show(client_address)}")
            t = threading.Thread(target=process, args=(request, client_address, args.idle_timeout))
            t.daemon = True
            t.start()
    except KeyboardInterrupt:
        pass
    print(f"model=threaded served={served}")


if __name__ == "__main__":
    main()
