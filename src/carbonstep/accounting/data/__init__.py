"""The shipped grid-intensity table and its sources (built by ``scripts/build_intensity_data.py``)."""
