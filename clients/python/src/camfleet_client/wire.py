"""camfleet's wire messages, built from the compiled contract in this package.

The classes are made at import from `camfleet.v1.binpb`, the FileDescriptorSet of
proto/camfleet/v1/camfleet.proto (see generate.py). That works with every protobuf
runtime from 4.22 on, where generated `_pb2` modules are tied to the protobuf version that
generated them.
"""

from importlib import resources

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "camfleet.v1"
DESCRIPTOR_FILE = "camfleet.v1.binpb"

_files = descriptor_pb2.FileDescriptorSet.FromString(
    resources.files(__package__).joinpath(DESCRIPTOR_FILE).read_bytes()
)
_pool = descriptor_pool.DescriptorPool()
for _file in _files.file:
    _pool.Add(_file)


def _message(name):
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))


def enum_name(enum: str, number: int, prefix: str) -> str:
    """The short lower-case name of an enum value: `enum_name("CameraState", 2,
    "CAMERA_STATE_")` is "streaming". Numbers this copy of the contract does not know
    come back as "unknown(N)"."""
    value = _pool.FindEnumTypeByName(f"{PACKAGE}.{enum}").values_by_number.get(number)
    if value is None:
        return f"unknown({number})"
    return value.name.removeprefix(prefix).lower()


def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """The contract this package was built from."""
    return _files


ClientMessage = _message("ClientMessage")
ServerMessage = _message("ServerMessage")
ListCameras = _message("ListCameras")
Subscribe = _message("Subscribe")
Unsubscribe = _message("Unsubscribe")
SetControl = _message("SetControl")
GetControls = _message("GetControls")
ResetControls = _message("ResetControls")
Authenticate = _message("Authenticate")

PROTOCOL_VERSION = 1
