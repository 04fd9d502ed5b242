"""A small service that offers one of its endpoints to models and agents through Switchboard: it
registers the endpoint as an MCP tool with a time-to-live, renews the registration while it runs
(a service that stops renewing disappears), and shares what it knows as a context document.

Registering needs the admin key. Start the gateway with one, then run the service:
    SWITCHBOARD_ADMIN_KEY=dev-admin-key cargo run --release
    SWITCHBOARD_ADMIN_KEY=dev-admin-key ./scripts/example.sh service
Set SWITCHBOARD_KEY when config.yaml has keys, SWITCHBOARD_RENEWALS to stop after that many
renewals (default: run until Ctrl-C).
"""

import json
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

BASE_URL = os.environ.get("SWITCHBOARD_BASE_URL", "http://127.0.0.1:8080/v1").removesuffix("/v1")
ADMIN_KEY = os.environ["SWITCHBOARD_ADMIN_KEY"]
KEY = os.environ.get("SWITCHBOARD_KEY", "no-key-needed")
RENEWALS = int(os.environ.get("SWITCHBOARD_RENEWALS", "0"))
TTL_SECONDS = 30

PRICES = {"tea": 3.5, "coffee": 4.0, "cake": 5.25}


class Prices(BaseHTTPRequestHandler):
    """The service's own endpoint: GET /price?item=tea."""

    def do_GET(self):
        item = parse_qs(urlparse(self.path).query).get("item", [""])[0]
        body = json.dumps({"item": item, "price": PRICES.get(item)}).encode()
        self.send_response(200 if item in PRICES else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def call(method, path, body, key):
    request = urllib.request.Request(
        f"{BASE_URL}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return response.status


def register(port):
    """Registering again before the TTL runs out renews it."""
    tool = {
        "name": "price_of",
        "description": "The price of an item on the menu (tea, coffee, cake)",
        "input_schema": {"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]},
        "http": {"method": "GET", "url": f"http://127.0.0.1:{port}/price?item={{item}}"},
        "ttl": f"{TTL_SECONDS}s",
    }
    return call("POST", "/admin/tools", tool, ADMIN_KEY)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Prices)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()

    print("registered price_of:", register(port))
    shared = {"menu": sorted(PRICES), "currency": "EUR", "service": f"http://127.0.0.1:{port}"}
    print("shared context://menu/today:", call("PUT", "/v1/context/menu/today", shared, KEY))

    renewed = 0
    try:
        while RENEWALS == 0 or renewed < RENEWALS:
            time.sleep(TTL_SECONDS / 3 if RENEWALS == 0 else 0.1)
            register(port)
            renewed += 1
            print("renewed", renewed)
    except KeyboardInterrupt:
        pass
    server.shutdown()
    print(f"stopped: the tool disappears within {TTL_SECONDS}s")


if __name__ == "__main__":
    main()
