"""Analysis over finished runs, in leaf packages that never import each other: compare, usage, study, plan.

Nothing here reads hardware.
"""
