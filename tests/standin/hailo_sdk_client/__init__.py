"""STAND-IN for Hailo's proprietary `hailo_sdk_client`, for hailoc's tests only.

It mirrors the API surface hailoc uses (see DFC_NOTES.md and docs/dfc-behaviour.md) so the
real code path can run in a container built without the Hailo AI Software Suite. It is as
strict as the strictest public evidence; where real behaviour is unknown it is strict and
docs/dfc-behaviour.md says "unverified". Its compile() output is NOT a HEF.
"""

from hailo_sdk_client._runner import ClientRunner, InferenceContext
from hailo_sdk_client._version import __version__

__all__ = ["ClientRunner", "InferenceContext", "__version__"]
