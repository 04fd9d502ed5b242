"""A small OTLP trace collector for the tests: OTLP/HTTP (protobuf) and OTLP/gRPC receivers on
loopback ports, decoding every export with the official `opentelemetry-proto` messages.

Prints one JSON line with both ports, then one JSON line per span received:
{"protocol", "service", "trace_id", "span_id", "parent_span_id", "name", "kind", "status",
 "attributes", "headers"}, ids in hex, so the Rust test can check what the gateway exported.
"""

import json
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as pb_grpc

lock = threading.Lock()


def value_of(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def report(protocol, request, headers):
    for resource_spans in request.resource_spans:
        resource = {a.key: value_of(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                line = {
                    "protocol": protocol,
                    "service": resource.get("service.name"),
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "name": span.name,
                    "kind": span.kind,
                    "status": span.status.code,
                    "attributes": {a.key: value_of(a.value) for a in span.attributes},
                    "headers": headers,
                }
                with lock:
                    print(json.dumps(line), flush=True)


class Http(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        request = pb.ExportTraceServiceRequest.FromString(body)
        headers = {k.lower(): v for k, v in self.headers.items()}
        report("http", request, headers)
        answer = pb.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


class Grpc(pb_grpc.TraceServiceServicer):
    def Export(self, request, context):
        headers = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        report("grpc", request, headers)
        return pb.ExportTraceServiceResponse()


def main():
    http = ThreadingHTTPServer(("127.0.0.1", 0), Http)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_TraceServiceServicer_to_server(Grpc(), server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with lock:
        print(json.dumps({"http": http.server_address[1], "grpc": grpc_port}), flush=True)
    # Until the test closes stdin (or dies).
    sys.stdin.read()
    server.stop(0)
    http.shutdown()


if __name__ == "__main__":
    main()
