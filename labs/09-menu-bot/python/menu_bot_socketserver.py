#!/usr/bin/env python3
"""The seed's "10086" menu bot on socketserver.ThreadingTCPServer, in Python 3 (lab 09).

The form seed 003 hints at: socketserver does the accept loop and the
thread per caller, the handler is just the conversation, process() imported
from menu_bot_server.py with that file's fixes (see its docstring). The
handler reaches the server's settings through self.server.

Changes from the seed: those of menu_bot_threaded.py (daemon threads, so that
SIGINT/SIGTERM end the server even while callers are connected; the flags,
the listening and summary lines), plus allow_reuse_address (SO_REUSEADDR,
as menu_bot_server.py sets it by hand). The callers are counted under a lock:
the handlers run in threads of their own.
"""
import pathlib
import socketserver
import sys
import threading

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import stop_on_signals  # noqa: E402
from menu_bot_server import process, server_args, show  # noqa: E402


class MenuBotHandler(socketserver.BaseRequestHandler):
    def handle(self):
        with MenuBotServer.lock:
            MenuBotServer.served += 1
        print(f"connection from {show(self.client_address)}")
        process(self.request, self.client_address, self.server.idle_timeout)


class MenuBotServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    served = 0
    lock = threading.Lock()


def main():
    args = server_args("Lab 09: the 10086 menu bot on ThreadingTCPServer.")
    stop_on_signals()
    try:  # from the listening line on, a stop signal ends the loop, never a traceback
        server = MenuBotServer((args.host, args.port), MenuBotHandler)
        server.idle_timeout = args.idle_timeout
        print(f"listening on {show(server.server_address)}")
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
    print(f"model=socketserver served={MenuBotServer.served}")


if __name__ == "__main__":
    main()
