"""Regenerates the package's copy of the wire contract from ../../proto.

    python clients/python/generate.py

The package carries the compiled descriptor of proto/camfleet/v1/camfleet.proto
(src/camfleet_client/camfleet.v1.binpb) and builds its message classes from it when
imported. `tests/test_wire.py` fails when the two differ. The compiler is the one in the
grpcio-tools wheel, so no system protoc is needed.
"""

import pathlib
import sys

from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "proto"
PROTO = "camfleet/v1/camfleet.proto"
OUT = HERE / "src" / "camfleet_client" / "camfleet.v1.binpb"


def compile_descriptor(out: pathlib.Path) -> None:
    """Compiles the contract to a FileDescriptorSet at `out`."""
    status = protoc.main(
        ["protoc", f"-I{PROTO_ROOT}", f"--descriptor_set_out={out}", PROTO]
    )
    if status != 0:
        raise SystemExit(f"protoc failed on {PROTO_ROOT / PROTO} (exit {status})")


if __name__ == "__main__":
    compile_descriptor(OUT)
    print(f"wrote {OUT.relative_to(HERE)}", file=sys.stderr)
