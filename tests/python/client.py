"""A Python client of probserve, using stubs generated from proto/ by grpcio-tools.

Usage: client.py GEN_DIR ADDRESS MODE [ARGS...]; prints one JSON object.
Modes: health (grpc.health.v1 + DiagnosticsService.GetHealthReport).
"""
import json
import sys

gen_dir, address, mode = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, gen_dir)

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from probserve.v1 import diagnostics_pb2, diagnostics_pb2_grpc  # noqa: E402
from probserve.v1 import inference_pb2, inference_pb2_grpc, common_pb2  # noqa: E402,F401
from probserve.v1 import models_pb2, models_pb2_grpc  # noqa: E402,F401

channel = grpc.insecure_channel(address)
out = {}
if mode == "health":
    h = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    out["health"] = health_pb2.HealthCheckResponse.ServingStatus.Name(h.status)
    r = diagnostics_pb2_grpc.DiagnosticsServiceStub(channel).GetHealthReport(
        diagnostics_pb2.GetHealthReportRequest(), timeout=10)
    out["state"] = diagnostics_pb2.HealthState.Name(r.state)
    out["subsystems"] = [s.name for s in r.subsystems]
elif mode == "infer":
    model, reading, seed = sys.argv[4], float(sys.argv[5]), int(sys.argv[6])
    req = inference_pb2.InferRequest(
        model=model,
        inputs={"reading": common_pb2.Value(real=reading)},
        method=inference_pb2.INFERENCE_METHOD_IMPORTANCE,
        options=inference_pb2.InferenceOptions(num_samples=4000),
        seed=seed,
    )
    r = inference_pb2_grpc.InferenceServiceStub(channel).Infer(req, timeout=30)
    out["outputs"] = {o.name: {"mean": o.mean, "sd": o.sd, "mcse": o.mcse_mean} for o in r.outputs}
    out["version"] = r.served_by.version
    out["seed"] = r.seed
    try:
        inference_pb2_grpc.InferenceServiceStub(channel).Infer(
            inference_pb2.InferRequest(model=model, inputs={}), timeout=10)
        out["bad_request_code"] = "OK"
    except grpc.RpcError as e:
        out["bad_request_code"] = e.code().name
        out["bad_request_message"] = e.details()
else:
    raise SystemExit(f"unknown mode {mode}")
print(json.dumps(out))
