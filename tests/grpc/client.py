"""A real gRPC client (Python grpcio) for `cairn serve`, used by the e2e
tests: generates the cairn.v1 stubs from proto/cairn/v1/cairn.proto into a
temp dir, calls one method and prints the reply as JSON.

Usage: client.py ADDR METHOD [JSON-REQUEST]
  With CAIRN_GRPC_TOKEN set, every call sends `authorization: Bearer $CAIRN_GRPC_TOKEN`.
  METHOD: Status | GetAsset | Lineage | ColumnLineage | Explain | Cost |
          AuditLog | Provenance | Materialize | Backfill | ListRuns | GetRun |
          CancelRun | Checks | health |
          MaterializeAndWatch (Materialize, then WatchRun at once) |
          Concurrent (a JSON list of Materialize requests sent at the same
          time; prints the list of replies) |
          WatchRun (prints one JSON line per event as it arrives, with
          `received_at`, the client's clock in seconds) |
          reflection (lists services through server reflection, v1alpha
          and v1)
"""
import collections, json, os, sys, tempfile, time

import grpc
from google.protobuf import json_format

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def stubs():
    from grpc_tools import protoc
    out = tempfile.mkdtemp()
    rc = protoc.main(["protoc", f"-I{os.path.join(ROOT, 'proto')}", f"--python_out={out}",
                      f"--grpc_python_out={out}", "cairn/v1/cairn.proto"])
    if rc != 0:
        sys.exit(f"protoc failed: {rc}")
    sys.path.insert(0, out)
    from cairn.v1 import cairn_pb2, cairn_pb2_grpc
    return cairn_pb2, cairn_pb2_grpc


class _CallDetails(collections.namedtuple(
        "_CallDetails", ["method", "timeout", "metadata", "credentials", "wait_for_ready",
                         "compression"]), grpc.ClientCallDetails):
    pass


class BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                  grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer TOKEN` to every call."""

    def __init__(self, token):
        self.token = token

    def _with_token(self, d):
        metadata = list(d.metadata or []) + [("authorization", f"Bearer {self.token}")]
        return _CallDetails(d.method, d.timeout, metadata, d.credentials,
                            getattr(d, "wait_for_ready", None), getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)


def main():
    addr, method = sys.argv[1], sys.argv[2]
    request = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    channel = grpc.insecure_channel(addr)
    token = os.environ.get("CAIRN_GRPC_TOKEN")
    if token is not None:
        channel = grpc.intercept_channel(channel, BearerToken(token))
    if method == "health":
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="cairn.v1.Cairn"), timeout=10)
        except grpc.RpcError as e:
            print(json.dumps({"code": e.code().name, "details": e.details()}))
            return
        print(json.dumps({"status": health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}))
        return
    if method == "reflection":
        # grpcio-reflection ships v1alpha messages only; v1's are the same
        # on the wire, so both services are called with them.
        from grpc_reflection.v1alpha import reflection_pb2
        out = {}
        for version in ("v1alpha", "v1"):
            call = channel.stream_stream(
                f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
            try:
                replies = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                               timeout=10)
                names = [s.name for r in replies for s in r.list_services_response.service]
            except grpc.RpcError as e:
                print(json.dumps({"code": e.code().name, "details": e.details()}))
                return
            out[version] = sorted(names)
        print(json.dumps(out))
        return
    pb2, grpc_pb2 = stubs()
    stub = grpc_pb2.CairnStub(channel)
    request_type = {
        "Status": pb2.StatusRequest,
        "GetAsset": pb2.GetAssetRequest,
        "Lineage": pb2.LineageRequest,
        "Explain": pb2.MaterializeRequest,
        "Materialize": pb2.MaterializeRequest,
        "ColumnLineage": pb2.ColumnLineageRequest,
        "Cost": pb2.CostRequest,
        "AuditLog": pb2.AuditLogRequest,
        "Provenance": pb2.ProvenanceRequest,
        "ListRuns": pb2.ListRunsRequest,
        "GetRun": pb2.GetRunRequest,
        "Backfill": pb2.BackfillRequest,
        "CancelRun": pb2.CancelRunRequest,
        "Checks": pb2.ChecksRequest,
        "WatchRun": pb2.WatchRunRequest,
        "MaterializeAndWatch": pb2.MaterializeRequest,
        "Concurrent": pb2.MaterializeRequest,
    }[method]
    if method == "MaterializeAndWatch":
        # Materialize, then watch the run at once from the same process:
        # the accepted reply, then one JSON line per event as it arrives.
        accepted = stub.Materialize(json_format.ParseDict(request, pb2.MaterializeRequest()),
                                    timeout=30)
        print(json.dumps({"accepted": json_format.MessageToDict(
            accepted, preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True)}), flush=True)
        method, request = "WatchRun", {"run_id": accepted.run_id}
    if method == "Concurrent":
        # Every Materialize request of the JSON list at the same time.
        import concurrent.futures
        barrier = __import__("threading").Barrier(len(request))

        def call(r):
            barrier.wait()
            try:
                reply = stub.Materialize(json_format.ParseDict(r, pb2.MaterializeRequest()),
                                         timeout=60)
                return json_format.MessageToDict(reply, preserving_proto_field_name=True,
                                                 always_print_fields_with_no_presence=True)
            except grpc.RpcError as e:
                return {"code": e.code().name, "details": e.details()}
        with concurrent.futures.ThreadPoolExecutor(len(request)) as pool:
            print(json.dumps(list(pool.map(call, request))))
        return
    if method == "WatchRun":
        # One JSON line per event as it arrives, with when it arrived.
        try:
            for event in stub.WatchRun(json_format.ParseDict(request, pb2.WatchRunRequest()),
                                       timeout=300):
                line = json_format.MessageToDict(event, preserving_proto_field_name=True,
                                                 always_print_fields_with_no_presence=True)
                line["received_at"] = time.time()
                print(json.dumps(line), flush=True)
        except grpc.RpcError as e:
            print(json.dumps({"code": e.code().name, "details": e.details()}), flush=True)
        return
    try:
        reply = getattr(stub, method)(json_format.ParseDict(request, request_type()), timeout=30)
    except grpc.RpcError as e:
        print(json.dumps({"code": e.code().name, "details": e.details()}))
        return
    print(json_format.MessageToJson(reply, preserving_proto_field_name=True,
                                    always_print_fields_with_no_presence=True))


if __name__ == "__main__":
    main()
