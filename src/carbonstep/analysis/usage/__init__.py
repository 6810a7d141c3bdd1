"""A lab's footprint over many runs: sources, aggregation and the HTML page (internal)."""
