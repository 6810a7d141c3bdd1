"""Analysis over finished runs: compare recipes, merge a job's reports, plan sites and start times, plots.

Nothing here reads hardware.
"""
