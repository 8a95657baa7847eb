"""Build orchestration shared by the backends: options, output layout, batches."""
