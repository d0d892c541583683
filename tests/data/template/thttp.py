"""An HTTP server for the template tests: it serves the pool's socket (fd 3) with the standard
library, one request at a time, and finishes the request in hand on SIGTERM."""
import http.server
import os
import signal
import socket


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        body = ("pid %d worker %s\n" % (os.getpid(), os.environ.get("COWHERD_WORKER"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    listener = socket.socket(fileno=3)
    listener.setblocking(False)  # the siblings accept from it too
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket = listener
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    server.timeout = 0.1
    while not stopping:
        server.handle_request()  # returns after a request, or after its 0.1 s timeout
    return 0
