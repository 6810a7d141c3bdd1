"""Compare recipes on CO2e per unit of a quality metric: sources, statistics, text and plot (internal)."""
