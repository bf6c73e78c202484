"""Running a command's jobs: planning, the budget, the runner and each job's pipeline, interrupts,
resume, fetch, dry runs and checks.
"""
