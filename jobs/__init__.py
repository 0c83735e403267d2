"""Entry points: the `clipnote` CLI and Ray job scripts (`python -m jobs.<name>`).

Only this package calls `ray.init`.
"""
