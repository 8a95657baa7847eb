"""Exception classes named after the real DFC's, raised with the messages seen in the field."""


class SDKException(Exception):
    pass


class BackendAllocatorException(SDKException):
    pass


class BackendValueError(SDKException, ValueError):
    pass


class AccelerasUnsupportedError(SDKException):
    pass


class AccelerasNegativeSlopesError(SDKException):
    pass


class AllocatorScriptParserException(SDKException):
    pass


class ParsingError(SDKException):
    pass


class HailoNNException(SDKException):
    pass


class ParsingWithRecommendationException(SDKException):
    pass


class MisspellNodeError(SDKException):
    pass


class UnsupportedHwArchError(SDKException):
    pass


# `# standin-fail: <stage> <name>` in a model script raises FAILURES[name] at that stage.
FAILURES = {
    "allocator": (BackendAllocatorException,
                  "Compilation failed: could not find a valid partition to contexts"),
    "super_defuse": (BackendAllocatorException,
                     "Assignment of normalization1 needs super-defuse"),
    "nan_exponent": (ValueError, "arange: cannot compute length"),
    "negative_slopes": (AccelerasNegativeSlopesError,
                        "Negative slopes found while computing exponents in a16 conv"),
    "unsupported": (AccelerasUnsupportedError,
                    "Unsupported layers for the provided optimization target: softmax1"),
    "nan_params": (BackendValueError, "Unsupported NaN values were found in params"),
}
