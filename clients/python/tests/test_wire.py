"""The package's copy of the wire contract is the one in proto/."""

import pathlib
import sys

from google.protobuf import descriptor_pb2

from camfleet_client import wire

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import generate  # noqa: E402


def test_the_packaged_contract_is_proto_as_it_is_now(tmp_path):
    fresh = tmp_path / "camfleet.v1.binpb"
    generate.compile_descriptor(fresh)
    now = descriptor_pb2.FileDescriptorSet.FromString(fresh.read_bytes())
    assert now == wire.descriptor_set(), (
        "proto/camfleet/v1/camfleet.proto changed since the Python client's copy was made: "
        "run `python clients/python/generate.py` and commit the result"
    )


def test_every_message_the_client_speaks_is_in_the_contract():
    names = {m.name for m in wire.descriptor_set().file[0].message_type}
    for message in ("ClientMessage", "ServerMessage", "Subscribe", "SetControl", "Frame"):
        assert message in names
    assert wire.enum_name("ErrorCode", 3, "ERROR_CODE_") == "out_of_range"
    assert wire.enum_name("CameraState", 99, "CAMERA_STATE_") == "unknown(99)"
