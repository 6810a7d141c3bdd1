"""What a hyperparameter search bought with its carbon: trial costs, the frontier and its plot (internal)."""
