"""Everything that talks to MLflow (internal): the sink and its local ledger, sync, the reachability probe,
run reading, experiment lookup, and the tag/param/metric names. Only this package imports ``mlflow``.

The public path for users is :mod:`carbonstep.mlflow`.
"""
