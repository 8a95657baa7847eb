"""Accuracy evaluation: metrics, the distance sweep, the gate and reports."""
