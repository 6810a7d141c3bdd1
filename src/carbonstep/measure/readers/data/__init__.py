"""The shipped CPU power table and its source (built by ``scripts/build_cpu_data.py``)."""
