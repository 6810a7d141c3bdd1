"""Plan where and when to run: rank sites by CO2e and water, find the cleanest start in a forecast (internal)."""
