"""STAND-IN for Hailo's proprietary `hailo_sdk_client`, for hailoc's tests only.

It mirrors the API surface hailoc uses (see DFC_NOTES.md) so the real code path can run in a
container built without the Hailo AI Software Suite. Its compile() output is NOT a HEF.
"""

from hailo_sdk_client._runner import ClientRunner, InferenceContext

__version__ = "0.0.0+standin"
__all__ = ["ClientRunner", "InferenceContext"]
