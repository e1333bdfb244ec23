#!/usr/bin/env python3
"""A stand-in OpenTelemetry collector for the tests (no collector is
packaged for this machine): a gRPC server with OTLP's LogsService and
MetricsService, from the opentelemetry-proto package, that appends every
request it receives, decoded from its protobuf, as one JSON line.

    receiver.py --port PORT --out FILE     # prints "listening PORT" when ready
"""
import argparse
import json
import threading
from concurrent import futures

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc


class Sink:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, kind, request):
        line = json.dumps({"kind": kind, "request": MessageToDict(request)})
        with self.lock:
            self.file.write(line + "\n")


class Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, sink):
        self.sink = sink

    def Export(self, request, context):
        self.sink.write("logs", request)
        return logs_service_pb2.ExportLogsServiceResponse()


class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, sink):
        self.sink = sink

    def Export(self, request, context):
        self.sink.write("metrics", request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    sink = Sink(args.out)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(sink), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(sink), server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"listening {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
