"""The DFC version this stand-in pretends to be; the image build script rewrites it."""

__version__ = "3.33.0+standin"
